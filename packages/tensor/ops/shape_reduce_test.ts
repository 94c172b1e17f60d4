import assert from "node:assert/strict";
import { checkOp, gpuTest } from "../testing/mod.ts";
import { randnArray } from "../random.ts";
import { memoryStats } from "../runtime.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { max, mean, sum } from "./reduce.ts";
import { concat, expand, permute, reshape, slice, transpose } from "./shape.ts";

/** float64 reduction of a row-major [outer, len, inner] view. */
function refReduce(
  x: Float64Array,
  shape: number[],
  axis: number | null,
  mode: string,
): Float64Array {
  const outer = axis === null ? 1 : shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const len = axis === null ? x.length : shape[axis]!;
  const inner = axis === null ? 1 : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const vals = Array.from({ length: len }, (_, k) => x[(o * len + k) * inner + i]!);
      const s = vals.reduce((a, b) => a + b, 0);
      out[o * inner + i] = mode === "max" ? Math.max(...vals) : mode === "mean" ? s / len : s;
    }
  }
  return out;
}

gpuTest("sum/mean/max over each axis and all elements, with grads", async () => {
  const shape = [3, 4, 5];
  for (const [name, op] of [["sum", sum], ["mean", mean], ["max", max]] as const) {
    for (const axis of [0, 1, 2, -1, null]) {
      const a = axis === null ? null : axis < 0 ? axis + 3 : axis;
      for (const keepdim of [false, true]) {
        await checkOp({
          name: `${name} axis ${axis} keepdim ${keepdim}`,
          inputs: [{ data: randnArray(60, 7), shape, grad: true }],
          gpu: ([x]) => (axis === null ? op(x!, undefined, keepdim) : op(x!, axis, keepdim)),
          cpu: ([x]) => refReduce(x!, shape, a, name),
        });
      }
    }
  }
  // Long axis: many strided workgroup iterations.
  await checkOp({
    name: "sum of 1000",
    inputs: [{ data: randnArray(2000, 8), shape: [2, 1000], grad: true }],
    gpu: ([x]) => sum(x!, 1),
    cpu: ([x]) => refReduce(x!, [2, 1000], 1, "sum"),
  });
});

gpuTest("max with ties splits the gradient evenly", async () => {
  // Finite differences are undefined at ties: check the documented split directly.
  const x = Tensor.fromArray([1, 3, 3, 2], [4]);
  x.requiresGrad = true;
  const { backward } = await import("../autograd.ts");
  const m = tidy(() => max(x));
  assert.equal(await m.item(), 3);
  backward(m);
  m.dispose();
  assert.deepEqual([...(await x.grad!.toArray())], [0, 0.5, 0.5, 0]);
  x.grad!.dispose();
  x.dispose();
});

gpuTest("reshape/permute/transpose/slice/concat/expand: values and grads", async () => {
  const perm = [2, 0, 1], shape = [2, 3, 4];
  await checkOp({
    name: "permute",
    inputs: [{ data: randnArray(24, 1), shape, grad: true }],
    gpu: ([x]) => permute(x!, perm),
    cpu: ([x]) => {
      const out: number[] = [];
      for (let k = 0; k < 4; k++) {
        for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) out.push(x![i * 12 + j * 4 + k]!);
      }
      return out;
    },
  });
  await checkOp({
    name: "transpose + reshape",
    inputs: [{ data: randnArray(6, 2), shape: [2, 3], grad: true }],
    gpu: ([x]) => reshape(transpose(x!), [-1]),
    cpu: ([x]) => [0, 1, 2].flatMap((j) => [x![j]!, x![3 + j]!]),
  });
  await checkOp({
    name: "slice axis 1",
    inputs: [{ data: randnArray(24, 3), shape, grad: true }],
    gpu: ([x]) => slice(x!, 1, 1, 3),
    cpu: ([x]) => [0, 1].flatMap((i) => Array.from(x!.subarray(i * 12 + 4, i * 12 + 12))),
  });
  await checkOp({
    name: "concat axis 1",
    inputs: [
      { data: randnArray(4, 4), shape: [2, 2], grad: true },
      { data: randnArray(6, 5), shape: [2, 3], grad: true },
    ],
    gpu: ([a, b]) => concat([a!, b!], 1),
    cpu: ([a, b]) =>
      [0, 1].flatMap((i) => [...a!.subarray(2 * i, 2 * i + 2), ...b!.subarray(3 * i, 3 * i + 3)]),
  });
  await checkOp({
    name: "expand (GQA repeat)",
    inputs: [{ data: randnArray(6, 6), shape: [2, 1, 3], grad: true }],
    gpu: ([x]) => expand(x!, [2, 4, 3]),
    cpu: ([x]) =>
      [0, 1].flatMap((i) => [0, 1, 2, 3].flatMap(() => Array.from(x!.subarray(3 * i, 3 * i + 3)))),
  });
});

gpuTest("tidy frees intermediates and the pool reuses buffers", () => {
  const before = memoryStats();
  const kept = tidy(() => {
    const a = Tensor.fromArray(randnArray(1000, 1), [1000]);
    const b = sum(a);
    return b;
  });
  const mid = memoryStats();
  assert.equal(mid.liveBuffers, before.liveBuffers + 1, "only the returned tensor stays live");
  kept.dispose();
  const reserved = memoryStats().reservedBytes;
  tidy(() => sum(Tensor.fromArray(randnArray(1000, 2), [1000]))).dispose();
  assert.equal(memoryStats().reservedBytes, reserved, "second run allocates nothing new");
  assert.equal(memoryStats().liveBuffers, before.liveBuffers);
  assert.throws(() => kept.buffer, /after dispose/);
});
