import { assertClose, F16_TOL, F32_TOL, gpuTest, GRAD_TOL, numericGrad } from "../testing/mod.ts";
import { backward, variable } from "../autograd.ts";
import { randnArray } from "../random.ts";
import { Tensor } from "../tensor.ts";
import { tidy } from "../scope.ts";
import * as ew from "./elementwise.ts";
import { sum } from "./reduce.ts";

function f32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

/** Broadcasts flat `x` of shape `s` to `out` shape (float64 reference). */
function bcast(x: Float64Array, s: number[], out: number[]): Float64Array {
  const n = out.reduce((a, b) => a * b, 1);
  const y = new Float64Array(n);
  const lead = out.length - s.length;
  for (let i = 0; i < n; i++) {
    let rem = i, src = 0, mul = 1;
    for (let d = out.length - 1; d >= 0; d--) {
      const idx = rem % out[d]!;
      rem = Math.floor(rem / out[d]!);
      if (d >= lead) {
        const sd = s[d - lead]!;
        src += (sd === 1 ? 0 : idx) * mul;
        mul *= sd;
      }
    }
    y[i] = x[src]!;
  }
  return y;
}

const erf = (x: number) => {
  // float64 erf by series/continued fraction is overkill here: use a high-precision approximation
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(
        -x * x - 1.26551223 +
          t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
                          t *
                            (0.27886807 +
                              t *
                                (-1.13520398 +
                                  t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
      );
  return x >= 0 ? y : -y;
};
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const UNARY: [string, (x: Tensor) => Tensor, (x: number) => number, (x: number) => number][] = [
  ["neg", ew.neg, (x) => -x, (x) => x],
  ["exp", ew.exp, Math.exp, (x) => x],
  ["log", ew.log, Math.log, (x) => Math.abs(x) + 0.1],
  ["sqrt", ew.sqrt, Math.sqrt, (x) => Math.abs(x) + 0.1],
  ["rsqrt", ew.rsqrt, (x) => 1 / Math.sqrt(x), (x) => Math.abs(x) + 0.1],
  ["sigmoid", ew.sigmoid, sig, (x) => 3 * x],
  ["tanh", ew.tanh, Math.tanh, (x) => 2 * x],
  ["relu", ew.relu, (x) => Math.max(x, 0), (x) => (Math.abs(x) < 0.01 ? 0.5 : x)],
  ["silu", ew.silu, (x) => x * sig(x), (x) => 3 * x],
  [
    "gelu",
    ew.gelu,
    (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
    (x) => 3 * x,
  ],
  ["gelu_erf", ew.geluErf, (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), (x) => 3 * x],
  ["scale", (x) => ew.scale(x, -1.7), (x) => -1.7 * x, (x) => x],
  ["add_scalar", (x) => ew.addScalar(x, 0.3), (x) => x + 0.3, (x) => x],
  ["pow3", (x) => ew.powScalar(x, 3), (x) => x ** 3, (x) => x],
  ["pow1.5", (x) => ew.powScalar(x, 1.5), (x) => x ** 1.5, (x) => Math.abs(x) + 0.1],
];

for (const [name, op, ref, domain] of UNARY) {
  gpuTest(`unary ${name}: forward and backward match float64 references`, async () => {
    const n = 37;
    const x = f32(randnArray(n, 11).map(domain));
    const w = f32(randnArray(n, 12));
    const xt = variable(Tensor.fromArray(x, [n]));
    const y = tidy(() => op(xt));
    assertClose(await y.toArray(), x.map(ref), F32_TOL, `${name} forward`);
    const loss = tidy(() => sum(ew.mul(y, Tensor.fromArray(w, [n]))));
    backward(loss);
    const numeric = numericGrad(([v]) => v!.reduce((s, xi, i) => s + ref(xi) * w[i]!, 0), [x], 0);
    assertClose(await xt.grad!.toArray(), numeric, GRAD_TOL, `${name} grad`);
    for (const t of [xt, xt.grad!, y, loss]) t.dispose();
  });
}

const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", ew.add, (a, b) => a + b],
  ["sub", ew.sub, (a, b) => a - b],
  ["mul", ew.mul, (a, b) => a * b],
  ["div", ew.div, (a, b) => a / b],
];
const SHAPES: [number[], number[]][] = [
  [[7], [7]],
  [[3, 5], [5]],
  [[2, 3, 4], [3, 1]],
  [[1, 4], [3, 1]],
  [[2, 1, 3], []],
];

for (const [name, op, ref] of BINARY) {
  gpuTest(`binary ${name} with broadcasting: forward and both grads`, async () => {
    for (const [sa, sb] of SHAPES) {
      const na = sa.reduce((x, y) => x * y, 1), nb = sb.reduce((x, y) => x * y, 1);
      const a = f32(randnArray(na, 1));
      const b = f32(
        randnArray(nb, 2).map((v) => (name === "div" ? Math.sign(v) * (Math.abs(v) + 0.5) : v)),
      );
      const rank = Math.max(sa.length, sb.length);
      const out = Array.from(
        { length: rank },
        (_, i) => Math.max(sa[sa.length - rank + i] ?? 1, sb[sb.length - rank + i] ?? 1),
      );
      const nOut = out.reduce((x, y) => x * y, 1);
      const w = f32(randnArray(nOut, 3));
      const refF = ([x, y]: Float64Array[]) => {
        const ba = bcast(x!, sa, out), bb = bcast(y!, sb, out);
        return ba.map((v, i) => ref(v, bb[i]!));
      };
      const at = variable(Tensor.fromArray(a, sa)), bt = variable(Tensor.fromArray(b, sb));
      const y = op(at, bt);
      assertClose(await y.toArray(), refF([a, b]), F32_TOL, `${name} ${sa}|${sb}`);
      const loss = tidy(() => sum(ew.mul(y, Tensor.fromArray(w, out))));
      backward(loss);
      const L = (xs: Float64Array[]) => refF(xs).reduce((s, v, i) => s + v * w[i]!, 0);
      assertClose(await at.grad!.toArray(), numericGrad(L, [a, b], 0), GRAD_TOL, `${name} da`);
      assertClose(await bt.grad!.toArray(), numericGrad(L, [a, b], 1), GRAD_TOL, `${name} db`);
      for (const t of [at, bt, at.grad!, bt.grad!, y, loss]) t.dispose();
    }
  });
}

gpuTest("f16 tensors: cast round trip and f16 arithmetic within f16 tolerance", async () => {
  const n = 29;
  const a = f32(randnArray(n, 5)), b = f32(randnArray(n, 6));
  const r = tidy(() => {
    const ah = ew.cast(Tensor.fromArray(a, [n]), "f16");
    const bh = Tensor.fromArray(b, [n], "f16");
    return [ew.mul(ah, bh), ew.cast(ah, "f32")];
  });
  assertClose(await r[0]!.toArray(), a.map((v, i) => v * b[i]!), F16_TOL, "f16 mul");
  assertClose(await r[1]!.toArray(), a, F16_TOL, "f16 round trip");
  r.forEach((t) => t.dispose());
});

gpuTest("gradients accumulate across backward calls", async () => {
  const x = variable(Tensor.fromArray([1, 2, 3], [3]));
  for (let i = 0; i < 2; i++) backward(tidy(() => sum(ew.mul(x, x))));
  assertClose(await x.grad!.toArray(), [4, 8, 12], 0, "2 × 2x");
  x.grad!.dispose();
  x.dispose();
});
