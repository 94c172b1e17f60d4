import assert from "node:assert/strict";
import { assertClose, checkOp, F32_TOL, gpuTest } from "../testing/mod.ts";
import { noGrad } from "../autograd.ts";
import { dequantizeNf4, dequantizeNf4Cpu, quantizeNf4, quantizeNf4Cpu } from "../nf4.ts";
import { randnArray } from "../random.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { dropout, dropoutMask } from "./dropout.ts";
import { cosineSimilarity, l2Normalize } from "./l2norm.ts";
import { maskedFill, where } from "./mask.ts";

gpuTest(
  "dropout: mask from (seed, index) matches the CPU hash; grad uses the same mask",
  async () => {
    const n = 1000, p = 0.3;
    const mask = dropoutMask(n, p, 1234);
    const kept = mask.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(kept / n - 0.7) < 0.06, `kept fraction ${kept / n}`);
    await checkOp({
      name: "dropout",
      inputs: [{ data: randnArray(n, 1), shape: [n], grad: true }],
      gpu: ([x]) => dropout(x!, p, 1234),
      cpu: ([x]) => x!.map((v, i) => (mask[i] ? v / (1 - p) : 0)),
    });
    await checkOp({
      name: "dropout p=0",
      inputs: [{ data: randnArray(5, 2), shape: [5], grad: true }],
      gpu: ([x]) => dropout(x!, 0, 1),
      cpu: ([x]) => x!,
    });
  },
);

gpuTest("maskedFill (incl. −inf) and where with broadcasting and grads", async () => {
  const mask = [1, 0, 0, 1, 0, 1];
  const y = noGrad(() =>
    tidy(() =>
      maskedFill(
        Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]),
        Tensor.fromArray([0, 1, 0], [3], "u32"),
        -Infinity,
      )
    )
  );
  assert.deepEqual([...(await y.toArray())], [1, -Infinity, 3, 4, -Infinity, 6]);
  y.dispose();
  await checkOp({
    name: "maskedFill",
    inputs: [{ data: randnArray(6, 1), shape: [2, 3], grad: true }, {
      data: mask,
      shape: [2, 3],
      dtype: "u32",
    }],
    gpu: ([x, m]) => maskedFill(x!, m!, 7.5),
    cpu: ([x]) => x!.map((v, i) => (mask[i] ? 7.5 : v)),
  });
  await checkOp({
    name: "where",
    inputs: [
      { data: [1, 0, 1], shape: [3], dtype: "u32" },
      { data: randnArray(6, 2), shape: [2, 3], grad: true },
      { data: randnArray(2, 3), shape: [2, 1], grad: true },
    ],
    gpu: ([c, a, b]) => where(c!, a!, b!),
    cpu: ([, a, b]) => a!.map((v, i) => ([1, 0, 1][i % 3] ? v : b![Math.floor(i / 3)]!)),
  });
});

gpuTest("l2Normalize and cosineSimilarity with grads", async () => {
  const norm = (x: Float64Array, D: number) =>
    x.map((v, i) => {
      const r = Math.floor(i / D);
      return v / Math.sqrt(x.subarray(r * D, r * D + D).reduce((s, u) => s + u * u, 0));
    });
  await checkOp({
    name: "l2Normalize",
    inputs: [{ data: randnArray(15, 1), shape: [3, 5], grad: true }],
    gpu: ([x]) => l2Normalize(x!),
    cpu: ([x]) => norm(x!, 5),
  });
  await checkOp({
    name: "cosineSimilarity",
    inputs: [
      { data: randnArray(12, 2), shape: [3, 4], grad: true },
      { data: randnArray(12, 3), shape: [3, 4], grad: true },
    ],
    gpu: ([a, b]) => cosineSimilarity(a!, b!),
    cpu: ([a, b]) => {
      const na = norm(a!, 4), nb = norm(b!, 4);
      return [0, 1, 2].map((r) =>
        [0, 1, 2, 3].reduce((s, j) => s + na[r * 4 + j]! * nb[r * 4 + j]!, 0)
      );
    },
  });
});

gpuTest("nf4: quantise (CPU) → dequantise on the GPU equals the CPU reference", async () => {
  const n = 200; // not a multiple of the block size
  const values = randnArray(n, 5);
  const data = quantizeNf4Cpu(values, 64);
  const ref = dequantizeNf4Cpu(data, n);
  // Each value lands on the nearest level: error ≤ half the widest level gap × absmax.
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(ref[i]! - values[i]!) <= 0.17 * data.absmax[Math.floor(i / 64)]!);
  }
  const q = quantizeNf4(values, [10, 20]);
  const y = dequantizeNf4(q);
  assertClose(await y.toArray(), ref, F32_TOL, "nf4 dequantise");
  assert.equal(q.dtype, "nf4");
  for (const t of [q, y]) t.dispose();
});
