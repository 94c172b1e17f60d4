/**
 * Elementwise ops with numpy broadcasting, each with its backward: add, sub,
 * mul, div, scale, addScalar, neg, exp, log, sqrt, rsqrt, powScalar, silu,
 * gelu (tanh approximation), geluErf (exact), sigmoid, tanh, relu, cast.
 *
 * Arithmetic happens in f32; f16 tensors are widened on load and rounded on
 * store. Binary ops need both inputs of the same dtype. HF Mistral/Llama's
 * MLP uses `silu`; `gelu` is the tanh approximation (`gelu_pytorch_tanh`),
 * `geluErf` the exact erf form (`gelu`).
 *
 * @module
 */

import { type DType, isFloat } from "../dtype.ts";
import { defineOp } from "../registry.ts";
import { Tensor } from "../tensor.ts";
import { broadcastShapes, broadcastStrides, contiguousStrides, launchMap } from "./map_kernel.ts";
import { sumToShape } from "./reduce.ts";

/** Applies a map expression to broadcast inputs into a new tensor (internal). */
export function mapRaw(
  op: string,
  expr: string,
  inputs: readonly Tensor[],
  options: { dtype?: DType; scalars?: number[] } = {},
): Tensor {
  const shape = broadcastShapes(op, ...inputs.map((t) => t.shape));
  const out = Tensor.empty(shape, options.dtype ?? inputs[0]!.dtype);
  launchMap({
    op,
    shape,
    out: { tensor: out, strides: contiguousStrides(shape) },
    inputs: inputs.map((t) => ({ tensor: t, strides: broadcastStrides(t.shape, shape) })),
    expr,
    scalars: options.scalars,
  });
  return out;
}

function checkBinary(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) {
    throw new Error(`${op}: needs two f32 or two f16 tensors, got ${a} and ${b} (use cast)`);
  }
}

type Grads = (dy: Tensor, a: Tensor, b: Tensor) => [Tensor | null, Tensor | null];

function binary(name: string, expr: string, grads: Grads) {
  const op = defineOp<Record<string, never>>({
    name,
    forward: ([a, b]) => {
      checkBinary(name, a!, b!);
      return { output: mapRaw(name, expr, [a!, b!]), saved: [a!, b!] };
    },
    backward: (dy, { saved, inputs }) => {
      const [ga, gb] = grads(dy, saved[0]!, saved[1]!);
      return [
        ga && inputs[0]!.requiresGrad ? sumToShape(ga, inputs[0]!.shape) : null,
        gb && inputs[1]!.requiresGrad ? sumToShape(gb, inputs[1]!.shape) : null,
      ];
    },
  });
  return (a: Tensor, b: Tensor): Tensor => op([a, b], {});
}

/** a + b (broadcasting). */
export const add: (a: Tensor, b: Tensor) => Tensor = binary("add", "a + b", (dy) => [dy, dy]);
/** a − b (broadcasting). */
export const sub: (a: Tensor, b: Tensor) => Tensor = binary(
  "sub",
  "a - b",
  (dy) => [dy, mapRaw("neg", "-a", [dy])],
);
/** a · b elementwise (broadcasting). */
export const mul: (a: Tensor, b: Tensor) => Tensor = binary(
  "mul",
  "a * b",
  (dy, a, b) => [mapRaw("mul", "a * b", [dy, b]), mapRaw("mul", "a * b", [dy, a])],
);
/** a / b elementwise (broadcasting). */
export const div: (a: Tensor, b: Tensor) => Tensor = binary(
  "div",
  "a / b",
  (
    dy,
    a,
    b,
  ) => [mapRaw("div", "a / b", [dy, b]), mapRaw("div-backward", "-a * b / (c * c)", [dy, a, b])],
);

/**
 * A unary op from its forward expression in `a` (= x) and its gradient
 * expression in `a` (= x), `b` (= dy) and `s0` (the scalar attribute).
 */
function unary(name: string, fwd: string, grad: string) {
  const op = defineOp<{ s: number }>({
    name,
    forward: ([x], { s }) => {
      if (!isFloat(x!.dtype)) throw new Error(`${name}: needs an f32 or f16 tensor, got ${x}`);
      return { output: mapRaw(name, fwd, [x!], { scalars: [s] }), saved: [x!] };
    },
    backward: (dy, { saved, attrs }) => [
      mapRaw(`${name}-backward`, grad, [saved[0]!, dy], { scalars: [attrs.s], dtype: dy.dtype }),
    ],
  });
  return (x: Tensor, s = 0): Tensor => op([x], { s });
}

/** −x. */
export const neg: (x: Tensor) => Tensor = unary("neg", "-a", "-b");
/** eˣ. */
export const exp: (x: Tensor) => Tensor = unary("exp", "exp(a)", "b * exp(a)");
/** ln x. */
export const log: (x: Tensor) => Tensor = unary("log", "log(a)", "b / a");
/** √x. */
export const sqrt: (x: Tensor) => Tensor = unary("sqrt", "sqrt(a)", "b * 0.5 / sqrt(a)");
/** 1/√x. */
export const rsqrt: (x: Tensor) => Tensor = unary(
  "rsqrt",
  "inverseSqrt(a)",
  "b * -0.5 * inverseSqrt(a) / a",
);
/** 1/(1+e⁻ˣ). */
export const sigmoid: (x: Tensor) => Tensor = unary(
  "sigmoid",
  "sigmoid_(a)",
  "b * sigmoid_(a) * (1.0 - sigmoid_(a))",
);
/** tanh x. */
export const tanh: (x: Tensor) => Tensor = unary(
  "tanh",
  "tanh_(a)",
  "b * (1.0 - tanh_(a) * tanh_(a))",
);
/** max(x, 0). */
export const relu: (x: Tensor) => Tensor = unary("relu", "max(a, 0.0)", "select(0.0, b, a > 0.0)");
/** x·σ(x) (HF Mistral/Llama's MLP activation). */
export const silu: (x: Tensor) => Tensor = unary(
  "silu",
  "a * sigmoid_(a)",
  "b * sigmoid_(a) * (1.0 + a * (1.0 - sigmoid_(a)))",
);
/** GELU, tanh approximation (HF `gelu_pytorch_tanh`). */
export const gelu: (x: Tensor) => Tensor = unary("gelu", "gelu_tanh(a)", "b * gelu_tanh_grad(a)");
/** GELU, exact erf form (HF `gelu`); erf by A&S 7.1.26 (|err| < 1.5e-7). */
export const geluErf: (x: Tensor) => Tensor = unary(
  "gelu_erf",
  "gelu_erf(a)",
  "b * gelu_erf_grad(a)",
);

const scaleOp = unary("scale", "a * s0", "b * s0");
/** x·s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  return scaleOp(x, s);
}
const addScalarOp = unary("add_scalar", "a + s0", "b");
/** x + s for a number s. */
export function addScalar(x: Tensor, s: number): Tensor {
  return addScalarOp(x, s);
}
const powOp = unary("pow_scalar", "pow_s(a, s0)", "b * s0 * pow_s(a, s0 - 1.0)");
/** xᵖ for a number p (negative x allowed when p is an integer). */
export function powScalar(x: Tensor, p: number): Tensor {
  return powOp(x, p);
}

const castOp = defineOp<{ dtype: DType }>({
  name: "cast",
  forward: ([x], { dtype }) => {
    if (dtype === "f16" || x!.dtype === "f16") {
      if (dtype === "nf4" || x!.dtype === "nf4") {
        throw new Error("cast: use quantizeNf4/dequantizeNf4");
      }
    }
    return { output: mapRaw("cast", "a", [x!], { dtype }) };
  },
  backward: (dy, { inputs }) => {
    const from = inputs[0]!.dtype;
    return [isFloat(from) ? mapRaw("cast", "a", [dy], { dtype: from }) : null];
  },
});

/** Converts to `dtype` (f32↔f16 round to nearest; float→int truncates). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === "nf4" || dtype === "nf4") throw new Error("cast: use quantizeNf4/dequantizeNf4");
  return castOp([x], { dtype });
}
