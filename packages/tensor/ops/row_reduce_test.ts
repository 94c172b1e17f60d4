/**
 * The row reductions on both paths — subgroups (where the device has them,
 * e.g. Dawn on lavapipe with subgroup size 8) and the workgroup-memory
 * fallback — against float64 references: softmax, log-softmax, RMSNorm,
 * cross-entropy, L2 normalisation and the gradient-norm clip, each forward
 * and backward, with rows longer than a workgroup (loop) and shorter than a
 * subgroup (idle lanes).
 */
import assert from "node:assert/strict";
import { getDevice } from "../device.ts";
import { variable } from "../autograd.ts";
import { randnArray } from "../random.ts";
import { Tensor } from "../tensor.ts";
import { kernelSource, registeredKernels } from "../kernel.ts";
import { checkOp, gpuTest } from "../testing/mod.ts";
import { assertClose } from "../testing/assert_close.ts";
import { clipGradNorm } from "../optim/clip.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { l2Normalize } from "./l2norm.ts";
import { rmsNorm } from "./rmsnorm.ts";
import { rowSubgroups, setRowSubgroupsForTesting } from "./row_reduce_wgsl.ts";
import { logSoftmax, softmax } from "./softmax.ts";

const device = await getDevice().catch(() => undefined);

const rowsOf = (x: Float64Array, D: number) =>
  Array.from({ length: x.length / D }, (_, r) => x.subarray(r * D, r * D + D));

function refSoftmax(x: Float64Array, D: number, log: boolean): Float64Array {
  const out = new Float64Array(x.length);
  rowsOf(x, D).forEach((row, r) => {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    row.forEach((v, j) => out[r * D + j] = log ? v - lse : Math.exp(v - lse));
  });
  return out;
}

function refRms(x: Float64Array, w: Float64Array, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  rowsOf(x, D).forEach((row, r) => {
    const rstd = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / D + eps);
    row.forEach((v, j) => out[r * D + j] = v * rstd * w[j]!);
  });
  return out;
}

function refCrossEntropy(x: Float64Array, V: number, targets: number[]): number[] {
  let total = 0, count = 0;
  rowsOf(x, V).forEach((row, r) => {
    const t = targets[r]!;
    if (t === -100) return;
    const m = Math.max(...row);
    total += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[t]!;
    count++;
  });
  return [total / count];
}

function refL2(x: Float64Array, D: number): Float64Array {
  const out = new Float64Array(x.length);
  rowsOf(x, D).forEach((row, r) => {
    const n = Math.max(Math.sqrt(row.reduce((s, v) => s + v * v, 0)), 1e-12);
    row.forEach((v, j) => out[r * D + j] = v / n);
  });
  return out;
}

// [rows, D]: one short row (fewer elements than a subgroup), one spanning several workgroup strides.
const SHAPES: [number, number][] = [[3, 5], [2, 600]];

for (const path of ["subgroups", "workgroup"] as const) {
  const ignore = device === undefined || (path === "subgroups" && !device.subgroups);
  if (ignore && device) {
    console.warn(`skipping the subgroup-path tests: ${device.provider}'s adapter has no subgroups`);
  }
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({
      name: `row reductions (${path}): ${name}`,
      ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        setRowSubgroupsForTesting(path === "workgroup" ? false : undefined);
        try {
          assert.equal(rowSubgroups(), path === "subgroups");
          await fn();
        } finally {
          setRowSubgroupsForTesting(undefined);
        }
      },
    });

  test("softmax and log-softmax, forward and grad", async () => {
    for (const [R, D] of SHAPES) {
      for (const log of [false, true]) {
        await checkOp({
          name: `${log ? "log_softmax" : "softmax"} ${R}×${D}`,
          inputs: [{ data: randnArray(R * D, 11).map((v) => 3 * v), shape: [R, D], grad: true }],
          gpu: ([x]) => (log ? logSoftmax(x!) : softmax(x!)),
          cpu: ([x]) => refSoftmax(x!, D, log),
        });
      }
    }
  });

  test("rmsNorm, forward, dx and dweight", async () => {
    for (const [R, D] of SHAPES) {
      await checkOp({
        name: `rmsNorm ${R}×${D}`,
        inputs: [
          { data: randnArray(R * D, 12), shape: [R, D], grad: true },
          { data: randnArray(D, 13, 1, 0.3), shape: [D], grad: true },
        ],
        gpu: ([x, w]) => rmsNorm(x!, w!, 1e-5),
        cpu: ([x, w]) => refRms(x!, w!, D, 1e-5),
      });
    }
  });

  test("crossEntropy (mean, ignore index), forward and grad", async () => {
    for (const [R, V] of SHAPES) {
      const targets = [V - 1, -100, 0].slice(0, R);
      await checkOp({
        name: `crossEntropy ${R}×${V}`,
        inputs: [
          { data: randnArray(R * V, 14).map((v) => 2 * v), shape: [R, V], grad: true },
          { data: targets, shape: [R], dtype: "i32" },
        ],
        gpu: ([x, t]) => crossEntropy(x!, t!),
        cpu: ([x]) => refCrossEntropy(x!, V, targets),
      });
    }
  });

  test("l2Normalize, forward and grad", async () => {
    for (const [R, D] of SHAPES) {
      await checkOp({
        name: `l2Normalize ${R}×${D}`,
        inputs: [{ data: randnArray(R * D, 15), shape: [R, D], grad: true }],
        gpu: ([x]) => l2Normalize(x!),
        cpu: ([x]) => refL2(x!, D),
      });
    }
  });

  test("clipGradNorm: global norm and scaled gradients", async () => {
    // Sizes: below one workgroup, and several partial slots (> 256·16 elements).
    const data = [randnArray(7, 16), randnArray(5000, 17)];
    const params = data.map((d) => {
      const p = variable(Tensor.fromArray(new Float32Array(d.length), [d.length]));
      p.grad = Tensor.fromArray(d, [d.length]);
      return p;
    });
    const f32 = data.map((d) => Float64Array.from(Float32Array.from(d)));
    const norm = Math.sqrt(f32.reduce((s, d) => s + d.reduce((a, v) => a + v * v, 0), 0));
    const measured = clipGradNorm(params, 1);
    assertClose(await measured.toArray(), [norm], 1e-5, "grad norm");
    for (const [i, p] of params.entries()) {
      const expected = f32[i]!.map((v) => v * Math.min(1, 1 / (norm + 1e-6)));
      assertClose(await p.grad!.toArray(), expected, 1e-5, `clipped gradient ${i}`);
      p.grad!.dispose();
      p.dispose();
    }
    measured.dispose();
  });
}

gpuTest("row-reduction kernels generate subgroup WGSL only on the subgroups path", () => {
  const names = [
    "softmax",
    "softmax-backward",
    "rms_norm",
    "rms_norm-backward-x",
    "cross_entropy",
    "cross_entropy-reduce",
    "l2_normalize",
    "clip-partial",
    "clip-total",
  ];
  const kernels = registeredKernels().filter((k) => names.includes(k.name));
  assert.equal(kernels.length, names.length);
  for (const k of kernels) {
    const spec = { log: false, t: "f32", wt: "f32", backward: false };
    const withSubgroups = kernelSource(k, { ...spec, subgroups: true });
    const without = kernelSource(k, { ...spec, subgroups: false });
    assert.match(withSubgroups, /^enable subgroups;/m, k.name);
    assert.match(withSubgroups, /subgroupAdd|subgroupMax/, k.name);
    assert.doesNotMatch(without, /subgroup/, k.name);
    assert.notEqual(k.key({ ...spec, subgroups: true }), k.key({ ...spec, subgroups: false }));
  }
});
