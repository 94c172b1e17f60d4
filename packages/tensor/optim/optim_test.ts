import assert from "node:assert/strict";
import { assertClose, F32_TOL, gpuTest } from "../testing/mod.ts";
import { backward, variable } from "../autograd.ts";
import { mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { randnArray } from "../random.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { AdamW } from "./adamw.ts";
import { clipGradNorm } from "./clip.ts";

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

gpuTest("clipGradNorm: global norm over several tensors, scaling on the GPU", async () => {
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
});
