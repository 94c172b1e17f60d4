import { checkOp, F16_TOL, gpuTest } from "../testing/mod.ts";
import { randnArray } from "../random.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { embedding, indexSelect } from "./gather.ts";
import { rmsNorm } from "./rmsnorm.ts";
import { rope, ropeTable, ropeTableData } from "./rope.ts";
import { logSoftmax, softmax } from "./softmax.ts";

const rows = (x: Float64Array, D: number) =>
  Array.from({ length: x.length / D }, (_, r) => x.subarray(r * D, r * D + D));

function refSoftmax(x: Float64Array, D: number, log: boolean): Float64Array {
  const out = new Float64Array(x.length);
  rows(x, D).forEach((row, r) => {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    row.forEach((v, j) => out[r * D + j] = log ? v - lse : Math.exp(v - lse));
  });
  return out;
}

for (
  const [shape, log] of [[[3, 5], false], [[2, 3, 300], false], [[4, 7], true], [
    [1, 513],
    true,
  ]] as [number[], boolean][]
) {
  gpuTest(`${log ? "log_softmax" : "softmax"} ${shape}: forward and grad`, async () => {
    const n = shape.reduce((a: number, b: number) => a * b, 1), D = shape[shape.length - 1]!;
    await checkOp({
      name: "softmax",
      inputs: [{ data: randnArray(n, 5).map((v) => 3 * v), shape: [...shape], grad: true }],
      gpu: ([x]) => (log ? logSoftmax(x!) : softmax(x!)),
      cpu: ([x]) => refSoftmax(x!, D, log),
    });
  });
}

function refRms(x: Float64Array, w: Float64Array, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  rows(x, D).forEach((row, r) => {
    const rstd = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / D + eps);
    row.forEach((v, j) => out[r * D + j] = v * rstd * w[j]!);
  });
  return out;
}

gpuTest("rmsNorm: forward, dx and dweight; f16 input", async () => {
  for (const [R, D] of [[3, 8], [2, 300], [5, 3]] as [number, number][]) {
    await checkOp({
      name: `rmsNorm ${R}×${D}`,
      inputs: [
        { data: randnArray(R * D, 1), shape: [R, D], grad: true },
        { data: randnArray(D, 2, 1, 0.3), shape: [D], grad: true },
      ],
      gpu: ([x, w]) => rmsNorm(x!, w!, 1e-5),
      cpu: ([x, w]) => refRms(x!, w!, D, 1e-5),
    });
  }
  await checkOp({
    name: "rmsNorm f16",
    inputs: [{ data: randnArray(40, 3), shape: [5, 8], dtype: "f16" }, {
      data: randnArray(8, 4),
      shape: [8],
      dtype: "f16",
    }],
    gpu: ([x, w]) => rmsNorm(x!, w!, 1e-6),
    cpu: ([x, w]) => refRms(x!, w!, 8, 1e-6),
    tol: F16_TOL,
  });
});

gpuTest("rope: HF rotate-half at per-token positions, grad = rotation by −θ", async () => {
  const [B, T, H, D] = [2, 3, 2, 8], maxPos = 40, theta = 10000;
  const pos = [0, 5, 17, 39, 2, 1];
  const ref = ([x]: Float64Array[]) => {
    const out = new Float64Array(x!.length), half = D / 2;
    for (let tok = 0; tok < B * T; tok++) {
      for (let h = 0; h < H; h++) {
        const base = (tok * H + h) * D;
        for (let i = 0; i < half; i++) {
          // float64 angle from the HF f32 inverse frequency.
          const inv = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / D)));
          const a = pos[tok]! * inv;
          const x1 = x![base + i]!, x2 = x![base + half + i]!;
          out[base + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
          out[base + half + i] = x2 * Math.cos(a) + x1 * Math.sin(a);
        }
      }
    }
    return out;
  };
  const table = ropeTable(maxPos, D, theta).keep();
  await checkOp({
    name: "rope",
    inputs: [
      { data: randnArray(B * T * H * D, 8), shape: [B, T, H, D], grad: true },
      { data: pos, shape: [B, T], dtype: "i32" },
    ],
    gpu: ([x, p]) => rope(x!, p!, table),
    cpu: ref,
  });
  table.dispose();
  // The table itself is HF's float32 cos/sin of the f32 angle.
  const data = ropeTableData(4, 4, 500000);
  const inv1 = Math.fround(1 / Math.fround(500000 ** 0.5));
  if (Math.abs(data[3 * 4 + 1]! - Math.cos(Math.fround(3 * inv1))) > 1e-7) {
    throw new Error("rope table");
  }
});

gpuTest(
  "embedding: gather rows, deterministic scatter-add backward with repeated ids",
  async () => {
    const [V, D] = [11, 5];
    const ids = [3, 0, 3, 10, 7, 3, 0, 2];
    await checkOp({
      name: "embedding",
      inputs: [{ data: randnArray(V * D, 4), shape: [V, D], grad: true }, {
        data: ids,
        shape: [2, 4],
        dtype: "i32",
      }],
      gpu: ([t, i]) => embedding(t!, i!),
      cpu: ([t]) =>
        Float64Array.from(ids.flatMap((id) => Array.from(t!.subarray(id * D, id * D + D)))),
    });
    await checkOp({
      name: "indexSelect axis 0 of a 3-D tensor",
      inputs: [{ data: randnArray(4 * 2 * 3, 5), shape: [4, 2, 3], grad: true }, {
        data: [2, 2, 0],
        shape: [3],
        dtype: "i32",
      }],
      gpu: ([t, i]) => indexSelect(t!, 0, i!),
      cpu: ([t]) =>
        Float64Array.from([2, 2, 0].flatMap((id) => Array.from(t!.subarray(id * 6, id * 6 + 6)))),
    });
    await checkOp({
      name: "indexSelect last axis",
      inputs: [{ data: randnArray(3 * 6, 6), shape: [3, 6], grad: true }, {
        data: [5, 1, 5, 0],
        shape: [4],
        dtype: "i32",
      }],
      gpu: ([t, i]) => indexSelect(t!, -1, i!),
      cpu: ([t]) =>
        Float64Array.from([0, 1, 2].flatMap((r) => [5, 1, 5, 0].map((j) => t![r * 6 + j]!))),
    });
  },
);

function refCe(x: Float64Array, V: number, targets: number[], reduction: string): Float64Array {
  const lossRows = rows(x, V).map((row, r) => {
    const t = targets[r]!;
    if (t === -100) return 0;
    const m = Math.max(...row);
    return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[t]!;
  });
  if (reduction === "none") return Float64Array.from(lossRows);
  const total = lossRows.reduce((a, b) => a + b, 0);
  const count = targets.filter((t) => t !== -100).length;
  return Float64Array.of(reduction === "sum" ? total : count ? total / count : 0);
}

gpuTest("crossEntropy: mean/sum/none with ignore index, grad = softmax − onehot", async () => {
  for (const [N, V] of [[4, 7], [3, 700]] as [number, number][]) {
    const targets = [1, -100, V - 1, 0].slice(0, N);
    for (const reduction of ["mean", "sum", "none"] as const) {
      await checkOp({
        name: `crossEntropy ${N}×${V} ${reduction}`,
        inputs: [{ data: randnArray(N * V, 9).map((v) => 2 * v), shape: [N, V], grad: true }, {
          data: targets,
          shape: [N],
          dtype: "i32",
        }],
        gpu: ([x, t]) => crossEntropy(x!, t!, { reduction }),
        cpu: ([x]) => refCe(x!, V, targets, reduction),
      });
    }
  }
  await checkOp({
    name: "crossEntropy all ignored → 0 with zero grad",
    inputs: [{ data: randnArray(6, 3), shape: [2, 3], grad: true }, {
      data: [-100, -100],
      shape: [2],
      dtype: "i32",
    }],
    gpu: ([x, t]) => crossEntropy(x!, t!),
    cpu: () => [0],
  });
});
