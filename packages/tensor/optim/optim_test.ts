import assert from "node:assert/strict";
import { assertClose, F32_TOL, gpuTest } from "../testing/mod.ts";
import { backward, variable } from "../autograd.ts";
import { mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { randnArray } from "../random.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { AdamW } from "./adamw.ts";
import { clipGradNorm, gradNormStats } from "./clip.ts";
import { setMultiTensorSlotsForTesting } from "./multi_tensor.ts";
import { runtimeCounters } from "../runtime.ts";

/** float64 torch.optim.AdamW step. */
function refAdamW(
  p: Float64Array,
  g: Float64Array,
  s: { m: Float64Array; v: Float64Array; t: number },
  lr: number,
  o = { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 },
): void {
  s.t++;
  const bc1 = 1 - o.b1 ** s.t, bc2 = 1 - o.b2 ** s.t;
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! * (1 - lr * o.wd);
    s.m[i] = o.b1 * s.m[i]! + (1 - o.b1) * g[i]!;
    s.v[i] = o.b2 * s.v[i]! + (1 - o.b2) * g[i]! ** 2;
    p[i] = p[i]! - (lr / bc1) * s.m[i]! / (Math.sqrt(s.v[i]!) / Math.sqrt(bc2) + o.eps);
  }
}

gpuTest(
  "AdamW matches a float64 reference over 5 steps; state export/import is exact",
  async () => {
    const n = 37;
    const p0 = Float64Array.from(Float32Array.from(randnArray(n, 1)));
    const param = variable(Tensor.fromArray(p0, [n]));
    const opt = new AdamW([param]);
    const ref = Float64Array.from(p0);
    const state = { m: new Float64Array(n), v: new Float64Array(n), t: 0 };
    for (let step = 0; step < 5; step++) {
      // loss = Σ p²·c → g = 2·c·p, computed on the GPU from the current parameter.
      const c = Float64Array.from(Float32Array.from(randnArray(n, 10 + step)));
      const loss = tidy(() => sum(mul(mul(param, param), Tensor.fromArray(c, [n]))));
      backward(loss);
      loss.dispose();
      const g = Float64Array.from(await param.grad!.toArray());
      assertClose(g, ref.map((v, i) => 2 * c[i]! * v), 1e-5, `grad step ${step}`);
      const lr = 0.01 * (step + 1);
      opt.step(lr);
      refAdamW(ref, g, state, lr);
      opt.zeroGrad();
      assertClose(await param.toArray(), ref, F32_TOL, `param after step ${step}`);
    }
    const exported = await opt.exportState();
    assert.deepEqual(exported.step, [5]);
    assertClose(exported.m[0]!, state.m, F32_TOL, "m");
    assertClose(exported.v[0]!, state.v, F32_TOL, "v");
    const other = new AdamW([param]);
    other.importState(exported);
    const again = await other.exportState();
    assert.deepEqual(again.m[0], exported.m[0]);
    assert.deepEqual(again.v[0], exported.v[0]);
    for (const o of [opt, other]) o.dispose();
    param.dispose();
  },
);

for (const slots of [1, undefined]) {
  gpuTest(
    `clipGradNorm (${
      slots ?? "device"
    } slots per launch): global norm over several tensors, scaling on the GPU`,
    async () => {
      setMultiTensorSlotsForTesting(slots);
      const a = variable(Tensor.fromArray(randnArray(5000, 1), [5000]));
      const b = variable(Tensor.fromArray(randnArray(7, 2), [7]));
      a.grad = Tensor.fromArray(randnArray(5000, 3), [5000]).keep();
      b.grad = Tensor.fromArray(randnArray(7, 4), [7]).keep();
      const ga = Float64Array.from(await a.grad.toArray()),
        gb = Float64Array.from(await b.grad.toArray());
      const norm = Math.sqrt([...ga, ...gb].reduce((s, v) => s + v * v, 0));
      const measured = clipGradNorm([a, b], Infinity);
      assertClose([await measured.item()], [norm], F32_TOL, "norm");
      const clipped = clipGradNorm([a, b], 1.5);
      assertClose([await clipped.item()], [norm], F32_TOL, "norm before clipping");
      const f = Math.min(1, 1.5 / (norm + 1e-6));
      assertClose(await a.grad.toArray(), ga.map((v) => v * f), F32_TOL, "scaled a");
      assertClose(await b.grad.toArray(), gb.map((v) => v * f), F32_TOL, "scaled b");
      for (const t of [measured, clipped, a.grad, b.grad, a, b]) t.dispose();
      setMultiTensorSlotsForTesting(undefined);
    },
  );
}

/** Parameters of odd sizes with host-known gradients (f32-rounded). */
function paramsWithGrads(sizes: number[], seed: number) {
  const host = sizes.map((n, i) => ({
    p: Float64Array.from(Float32Array.from(randnArray(n, seed + i))),
    g: Float64Array.from(Float32Array.from(randnArray(n, seed + 100 + i))),
  }));
  const params = host.map(({ p }) => variable(Tensor.fromArray(p, [p.length])));
  return { host, params };
}

for (const slots of [3, undefined]) {
  gpuTest(
    `multi-tensor AdamW (${
      slots ?? "device"
    } slots per launch): 7 parameters, one without a gradient, ` +
      "a gradient factor, float64 reference, exact export/import",
    async (device) => {
      setMultiTensorSlotsForTesting(slots);
      try {
        const sizes = [1, 300, 7, 1025, 64, 3, 513];
        const { host, params } = paramsWithGrads(sizes, 40);
        const opt = new AdamW(params, { weightDecay: 0.1 });
        // Per launch: 2 bindings per parameter (param, grad) besides 3 fixed, at most 16
        // parameters; Dawn's lavapipe allows fewer storage bindings than Deno's.
        const fit = Math.floor((device.limits.maxStorageBuffersPerShaderStage - 3) / 2);
        assert.equal(opt.launchesPerStep, Math.ceil(sizes.length / (slots ?? Math.min(16, fit))));
        const states = sizes.map((n) => ({ m: new Float64Array(n), v: new Float64Array(n), t: 0 }));
        const ref = host.map(({ p }) => Float64Array.from(p));
        const factor = Tensor.fromArray([0.25, 0], [2]);
        for (let step = 0; step < 3; step++) {
          params.forEach((p, i) => {
            // Parameter 2 has no gradient on the second step: it must not move nor count a step.
            if (step === 1 && i === 2) return;
            p.grad = Tensor.fromArray(host[i]!.g, [sizes[i]!]).keep();
          });
          const before = runtimeCounters().dispatches;
          opt.step(0.01, { gradFactor: factor });
          assert.equal(runtimeCounters().dispatches - before, opt.launchesPerStep);
          opt.zeroGrad();
          ref.forEach((r, i) => {
            if (step === 1 && i === 2) return;
            refAdamW(r, host[i]!.g.map((g) => g * 0.25), states[i]!, 0.01, {
              b1: 0.9,
              b2: 0.999,
              eps: 1e-8,
              wd: 0.1,
            });
          });
        }
        for (const [i, p] of params.entries()) {
          assertClose(await p.toArray(), ref[i]!, F32_TOL, `parameter ${i}`);
        }
        const exported = await opt.exportState();
        assert.deepEqual(exported.step, [3, 3, 2, 3, 3, 3, 3]);
        exported.m.forEach((m, i) => assertClose(m, states[i]!.m, F32_TOL, `m ${i}`));
        const other = new AdamW(params);
        other.importState(exported);
        assert.deepEqual(await other.exportState(), exported);
        for (const o of [opt, other]) o.dispose();
        for (const t of [factor, ...params]) t.dispose();
      } finally {
        setMultiTensorSlotsForTesting(undefined);
      }
    },
  );
}

gpuTest(
  "gradNormStats: unscaled norm over groups, clip factor over the loss scale, inf/NaN found",
  async () => {
    setMultiTensorSlotsForTesting(2);
    try {
      const sizes = [5000, 7, 1, 300, 33];
      const { host, params } = paramsWithGrads(sizes, 60);
      params.forEach((p, i) => p.grad = Tensor.fromArray(host[i]!.g, [sizes[i]!]).keep());
      const norm = Math.sqrt(host.reduce((s, { g }) => s + g.reduce((a, v) => a + v * v, 0), 0));
      const S = 1024;
      // The gradients hold S·g: the stats report the norm of g and fold 1/S into the factor.
      for (const p of params) {
        const scaled = p.grad!.toArray().then((a) => a.map((v) => v * S));
        p.grad!.dispose();
        p.grad = Tensor.fromArray(await scaled, p.shape).keep();
      }
      const stats = gradNormStats(params, 1.5, { lossScale: S });
      assertClose([await stats.norm.item()], [norm], F32_TOL, "unscaled norm");
      const f = await stats.factor.toArray();
      assertClose([f[0]!], [Math.min(1, 1.5 / (norm + 1e-6)) / S], F32_TOL, "factor");
      assert.equal(f[1], 0, "no inf/NaN");
      stats.norm.dispose();
      stats.factor.dispose();
      for (const bad of [Infinity, NaN]) {
        const g = await params[3]!.grad!.toArray();
        g[17] = bad;
        params[3]!.grad!.dispose();
        params[3]!.grad = Tensor.fromArray(g, [g.length]).keep();
        const s = gradNormStats(params, Infinity, { lossScale: S });
        assert.equal((await s.factor.toArray())[1], 1, `found ${bad}`);
        assert(Number.isNaN(await s.norm.item()));
        s.norm.dispose();
        s.factor.dispose();
      }
      for (const p of params) p.grad?.dispose(), p.dispose();
    } finally {
      setMultiTensorSlotsForTesting(undefined);
    }
  },
);
