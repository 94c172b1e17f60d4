import { equal, ok } from "node:assert/strict";
import { assertClose, F16_TOL, F32_TOL, gpuTest } from "../testing/mod.ts";
import { noGrad } from "../autograd.ts";
import type { Device } from "../device.ts";
import { randnArray } from "../random.ts";
import { setBindingLimitForTesting } from "../runtime.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { linear, matmulRaw, setMatmulVariant, traceMatmulKernels } from "./matmul.ts";
import {
  MATMUL_FAMILY,
  matmulKernelCode,
  type MatmulVariant,
  variantName,
  variantProblem,
  variantWorkgroupBytes,
} from "./matmul_kernels.ts";
import { refMatmul } from "./matmul_reference.ts";

const f32 = (v: ArrayLike<number>) => Float64Array.from(Float32Array.from(v));
const f16 = (v: ArrayLike<number>) => Float64Array.from(Float16Array.from(v));

/**
 * The member itself when the device can run it; otherwise the same member
 * with a shallower K tile (same generated code paths, less workgroup memory:
 * lavapipe offers 32 KiB, the large members want up to 33 KiB).
 */
function runnable(v: MatmulVariant, device: Device): MatmulVariant {
  let r = v;
  while (variantProblem(r, device.limits) && r.bk > 4) r = { ...r, bk: r.bk / 2 };
  const problem = variantProblem(r, device.limits);
  if (problem) throw new Error(`${variantName(v)} cannot run on this device: ${problem}`);
  return r;
}

interface Case {
  batch: number;
  M: number;
  N: number;
  K: number;
  /** Which operand is a broadcast 2-D matrix. */
  bcast?: "a" | "b";
}

const CASES: Case[] = [
  { batch: 1, M: 1, N: 1, K: 1 },
  { batch: 1, M: 7, N: 13, K: 5 },
  { batch: 1, M: 33, N: 65, K: 17 },
  { batch: 1, M: 64, N: 64, K: 64 },
  { batch: 1, M: 128, N: 96, K: 72 },
  { batch: 1, M: 7, N: 64, K: 16 },
  // Several tile rows and columns: swizzled orders with a partial last group.
  { batch: 1, M: 330, N: 136, K: 8 },
  { batch: 3, M: 20, N: 24, K: 12 },
  { batch: 3, M: 7, N: 13, K: 5, bcast: "b" },
  { batch: 3, M: 12, N: 8, K: 36, bcast: "a" },
];

/** Which operands the vec4 path must take, restated from the alignment rule. */
function expectedVec(c: Case, tA: boolean, tB: boolean): [boolean, boolean, boolean] {
  const q = (x: number) => x % 4 === 0;
  return [tA ? q(c.M) : q(c.K), tB ? q(c.K) : q(c.N), q(c.N)];
}

async function checkCase(
  v: MatmulVariant,
  c: Case,
  tA: boolean,
  tB: boolean,
  types: ["f32" | "f16", "f32" | "f16"],
  seed: number,
): Promise<void> {
  const aB = c.batch > 1 && c.bcast !== "a", bB = c.batch > 1 && c.bcast !== "b";
  const round = (t: string) => (t === "f16" ? f16 : f32);
  const a = round(types[0])(randnArray((aB ? c.batch : 1) * c.M * c.K, seed));
  const b = round(types[1])(randnArray((bB ? c.batch : 1) * c.K * c.N, seed + 1));
  const aShape = [...(aB ? [c.batch] : []), ...(tA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...(bB ? [c.batch] : []), ...(tB ? [c.N, c.K] : [c.K, c.N])];
  const { result: out, kernels } = traceMatmulKernels(() =>
    noGrad(() =>
      tidy(() =>
        matmulRaw(
          Tensor.fromArray(a, aShape, types[0]),
          Tensor.fromArray(b, bShape, types[1]),
          { transA: tA, transB: tB, variant: v },
        )
      )
    )
  );
  const what = `${variantName(v)} ${types.join("×")} b${c.batch}${
    c.bcast ? `(${c.bcast} broadcast)` : ""
  } ${c.M}×${c.N}×${c.K} tA=${tA} tB=${tB}`;
  equal(kernels.length, 1, what);
  const [vecA, vecB, vecC] = v.vec4 ? expectedVec(c, tA, tB) : [false, false, false];
  const k = kernels[0]!;
  equal(`${k.vecA}${k.vecB}${k.vecC}`, `${vecA}${vecB}${vecC}`, `vec4 flags of ${what}`);
  const ref = refMatmul(a, b, { batch: c.batch, M: c.M, N: c.N, K: c.K, tA, tB, aB, bB });
  const tol = types.includes("f16") ? F16_TOL : F32_TOL;
  assertClose(await out.toArray(), ref, tol, what);
  out.dispose();
}

gpuTest(
  "matmul family: every variant, odd and aligned shapes, batch, all transposes",
  async (d) => {
    let seed = 1000, vecRuns = 0, scalarRuns = 0;
    for (const member of MATMUL_FAMILY) {
      const v = runnable(member, d);
      for (const c of CASES) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            await checkCase(v, c, tA, tB, ["f32", "f32"], seed += 2);
            const [x, y, z] = v.vec4 ? expectedVec(c, tA, tB) : [false, false, false];
            if (x && y && z) vecRuns++;
            if (!x && !y && !z) scalarRuns++;
          }
        }
      }
    }
    // Both paths really ran for every member that has a vec4 path.
    ok(vecRuns >= (MATMUL_FAMILY.length - 1) * 4 * 3, `vec4 runs ${vecRuns}`);
    ok(scalarRuns >= MATMUL_FAMILY.length * 4 * 3, `scalar runs ${scalarRuns}`);
  },
);

gpuTest("matmul family: f16 and mixed operands (vec4<f16> and scalar loads)", async (d) => {
  if (!d.hasF16) return;
  let seed = 5000;
  // f16 × f16 under every transpose; mixed dtypes in the two layouts the models use.
  const runs: [Case, boolean, boolean, ["f32" | "f16", "f32" | "f16"]][] = [];
  for (const c of CASES.filter((c) => [33, 64, 20].includes(c.M))) {
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
      runs.push([c, tA!, tB!, ["f16", "f16"]]);
    }
    runs.push([c, false, true, ["f32", "f16"]], [c, true, false, ["f16", "f32"]]);
  }
  for (const member of MATMUL_FAMILY) {
    const v = runnable(member, d);
    for (const [c, tA, tB, types] of runs) await checkCase(v, c, tA, tB, types, seed += 2);
  }
});

gpuTest("matmul family: fused bias + silu/gelu epilogue, vec4 and scalar stores", async (d) => {
  const silu = (x: number) => x / (1 + Math.exp(-x));
  const gelu = (x: number) =>
    0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  let seed = 7000;
  for (const member of MATMUL_FAMILY) {
    const v = runnable(member, d);
    setMatmulVariant(v);
    try {
      const cases = [[5, 12, 16, "silu"], [9, 12, 13, "gelu"], [70, 33, 68, "gelu"]] as const;
      for (const [rows, inDim, outDim, act] of cases) {
        {
          const fn = act === "silu" ? silu : gelu;
          const x = f32(randnArray(rows! * inDim!, seed++));
          const w = f32(randnArray(outDim! * inDim!, seed++));
          const bias = f32(randnArray(outDim!, seed++));
          const { result: y, kernels } = traceMatmulKernels(() =>
            noGrad(() =>
              tidy(() =>
                linear(
                  Tensor.fromArray(x, [rows!, inDim!]),
                  Tensor.fromArray(w, [outDim!, inDim!]),
                  Tensor.fromArray(bias, [outDim!]),
                  act,
                )
              )
            )
          );
          const what = `${variantName(v)} linear ${rows}×${inDim}→${outDim} ${act}`;
          equal(kernels[0]!.vecC, v.vec4 && outDim! % 4 === 0, `vecC of ${what}`);
          const ref = refMatmul(x, w, {
            batch: 1,
            M: rows!,
            N: outDim!,
            K: inDim!,
            tA: false,
            tB: true,
            aB: false,
            bB: false,
          }).map((s, i) => fn(s + bias[i % outDim!]!));
          assertClose(await y.toArray(), ref, F32_TOL, what);
          y.dispose();
        }
      }
    } finally {
      setMatmulVariant(undefined);
    }
  }
});

gpuTest("matmul family: split bindings (row split and accumulating K split)", async (d) => {
  let seed = 9000;
  setBindingLimitForTesting(2048);
  try {
    for (const member of MATMUL_FAMILY) {
      const v = runnable(member, d);
      // [70|72, 8] f32 rows are 32 B: chunks of 64 rows, then 6 or 8.
      for (const rowsW of [70, 72]) {
        const w = f32(randnArray(rowsW * 8, seed++));
        const a = f32(randnArray(5 * 8, seed++)), a2 = f32(randnArray(3 * rowsW, seed++));
        const base = { batch: 1, tA: false, aB: false, bB: false };
        const { result: [c1, c2], kernels } = traceMatmulKernels(() =>
          noGrad(() =>
            tidy(() => [
              matmulRaw(Tensor.fromArray(a, [5, 8]), Tensor.fromArray(w, [rowsW, 8]), {
                transB: true,
                variant: v,
              }),
              matmulRaw(Tensor.fromArray(a2, [3, rowsW]), Tensor.fromArray(w, [rowsW, 8]), {
                variant: v,
              }),
            ])
          )
        );
        equal(kernels.length, 4);
        const what = `${variantName(v)} W[${rowsW}, 8]`;
        if (v.vec4) {
          // Row split: output columns 0..63 then 64..; vec4 stores only when N is aligned.
          equal(kernels[0]!.vecC, rowsW % 4 === 0, `row split vecC ${what}`);
          // K split: A (lda = rowsW) is vec4 along K only when rowsW is aligned,
          // including the second chunk (offset 64, 6 or 8 deep); B chunks are [k, 8].
          equal(kernels[2]!.vecA, rowsW % 4 === 0, `K split A chunk 1 ${what}`);
          equal(kernels[3]!.vecA, rowsW % 4 === 0, `K split A chunk 2 ${what}`);
          equal(kernels[3]!.vecB, true, `K split B chunk 2 ${what}`);
        }
        assertClose(
          await c1!.toArray(),
          refMatmul(a, w, { ...base, M: 5, N: rowsW, K: 8, tB: true }),
          F32_TOL,
          `row split ${what}`,
        );
        assertClose(
          await c2!.toArray(),
          refMatmul(a2, w, { ...base, M: 3, N: 8, K: rowsW, tB: false }),
          F32_TOL,
          `K split ${what}`,
        );
        c1!.dispose();
        c2!.dispose();
      }
    }
  } finally {
    setBindingLimitForTesting(undefined);
  }
});

Deno.test("matmul variants: validation and workgroup memory accounting", () => {
  const base: MatmulVariant = {
    bm: 128,
    bn: 128,
    bk: 16,
    tm: 8,
    tn: 8,
    vec4: true,
    buffering: "double",
    pad: 4,
  };
  // 2 buffers × 16 k-rows × (132 + 132) floats × 4 B.
  equal(variantWorkgroupBytes(base), 2 * 16 * 264 * 4);
  const limits = {
    maxComputeWorkgroupStorageSize: 49152,
    maxComputeInvocationsPerWorkgroup: 1024,
    maxComputeWorkgroupSizeX: 1024,
  };
  equal(variantProblem(base, limits), undefined);
  ok(variantProblem({ ...base, bk: 32 }, limits)?.includes("workgroup memory"));
  ok(variantProblem({ ...base, tm: 6 })?.includes("multiples of 4"));
  ok(variantProblem({ ...base, bm: 100 })?.includes("bm % tm"));
  ok(variantProblem({ ...base, bk: 6 })?.includes("bk"));
  ok(variantProblem({ ...base, pad: 2 })?.includes("pad"));
  ok(variantProblem({ ...base, tm: 4, tn: 4, bm: 128, bn: 256 }, limits)?.includes("threads"));
  for (const v of MATMUL_FAMILY) equal(variantProblem(v), undefined, variantName(v));
  // The generator refuses invalid members instead of emitting broken WGSL.
  let threw = false;
  try {
    matmulKernelCode({
      variant: { ...base, tn: 6 },
      aType: "f32",
      bType: "f32",
      transA: false,
      transB: false,
      vecA: false,
      vecB: false,
      vecC: false,
      bias: false,
      activation: "none",
    });
  } catch {
    threw = true;
  }
  ok(threw);
});

Deno.test("matmul kernels: f16 operands load as vec4<f16>, staged and accumulated in f32", () => {
  const spec = {
    variant: MATMUL_FAMILY[8]!,
    aType: "f32" as const,
    bType: "f16" as const,
    transA: false,
    transB: true,
    vecA: true,
    vecB: true,
    vecC: true,
    bias: false,
    activation: "none" as const,
  };
  const code = matmulKernelCode(spec);
  ok(code.startsWith("enable f16;"), "f16 enabled");
  ok(/var<storage, read> B: array<vec4<f16>>/.test(code), "B bound as vec4<f16>");
  // Converted as it is loaded into the staging registers, stored to f32 workgroup tiles.
  ok(/rB0 = vec4<f32>\(B\[/.test(code), "vec4<f16> load converted to vec4<f32>");
  ok(/var<workgroup> Bs: array<vec4<f32>/.test(code), "f32 workgroup tile");
  ok(/var acc0_0 = vec4<f32>/.test(code), "f32 accumulators");
  equal(/f16>?\s*\(|vec4<f16>\(|: f16\b/.test(code), false, "no f16 arithmetic");
  // Split-K partials: K range from the split index, no epilogue in the product.
  const split = matmulKernelCode({ ...spec, splits: 3 });
  ok(split.includes("let kBegin = split * P.kChunk;"), "K range per split");
  ok(split.includes("split * P.cSplitStride"), "one scratch slab per split");
  let threw = false;
  try {
    matmulKernelCode({ ...spec, splits: 3, bias: true });
  } catch {
    threw = true;
  }
  ok(threw, "bias belongs to the reduction pass");
});
