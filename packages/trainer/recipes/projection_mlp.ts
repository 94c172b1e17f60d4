/**
 * The two-layer projection of distill-for-retrieval (its `ProjectionLayer`):
 * `Linear(in → hidden) → LayerNorm → GELU (exact erf) → Linear(hidden → out)
 * → LayerNorm`, with PyTorch's initialisation (weights and biases uniform in
 * ±1/√fan_in, LayerNorm weight 1 and bias 0, eps 1e-5). Tensor names follow
 * that module's state dict under `projection.` (`projection.layer1.weight`,
 * `projection.norm1.bias`, …) so a checkpoint reads the same way.
 *
 * @module
 */

import {
  add,
  addScalar,
  geluErf,
  linear,
  mean,
  mul,
  parameter,
  rsqrt,
  sub,
  type Tensor,
  tidy,
} from "@irforge/tensor";
import type { Rng } from "../rng.ts";

/** PyTorch `nn.LayerNorm`'s default epsilon. */
export const LAYER_NORM_EPS = 1e-5;

/** A projection MLP: its parameters by name and its forward pass. */
export interface ProjectionMlp {
  /** `projection.layer1.weight`, `…bias`, `projection.norm1.weight`, … (trainable). */
  parameters: Map<string, Tensor>;
  /** `[rows, in]` → `[rows, out]`. */
  forward(x: Tensor): Tensor;
  /** Frees the parameters. */
  dispose(): void;
}

/** LayerNorm over the last axis: (x − mean)/√(var + eps)·weight + bias (biased variance). */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = LAYER_NORM_EPS): Tensor {
  return tidy(() => {
    const axis = x.shape.length - 1;
    const centred = sub(x, mean(x, axis, true));
    const variance = mean(mul(centred, centred), axis, true);
    const normed = mul(centred, rsqrt(addScalar(variance, eps)));
    return add(mul(normed, weight), bias);
  });
}

/**
 * A fresh projection `input → hidden → output` initialised from `rng` as
 * PyTorch initialises `nn.Linear` (kaiming-uniform weights with a = √5, i.e.
 * uniform in ±1/√fan_in, and biases uniform in the same range).
 */
export function projectionMlp(
  input: number,
  hidden: number,
  output: number,
  rng: Rng,
): ProjectionMlp {
  const uniform = (n: number, fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => (2 * rng.uniform() - 1) * bound);
  };
  const parameters = new Map<string, Tensor>([
    ["projection.layer1.weight", parameter(uniform(hidden * input, input), [hidden, input])],
    ["projection.layer1.bias", parameter(uniform(hidden, input), [hidden])],
    ["projection.norm1.weight", parameter(new Float32Array(hidden).fill(1), [hidden])],
    ["projection.norm1.bias", parameter(new Float32Array(hidden), [hidden])],
    ["projection.layer2.weight", parameter(uniform(output * hidden, hidden), [output, hidden])],
    ["projection.layer2.bias", parameter(uniform(output, hidden), [output])],
    ["projection.norm2.weight", parameter(new Float32Array(output).fill(1), [output])],
    ["projection.norm2.bias", parameter(new Float32Array(output), [output])],
  ]);
  const p = (name: string) => parameters.get(`projection.${name}`)!;
  return {
    parameters,
    forward: (x) =>
      tidy(() => {
        const h = layerNorm(
          linear(x, p("layer1.weight"), p("layer1.bias")),
          p("norm1.weight"),
          p("norm1.bias"),
        );
        const y = linear(geluErf(h), p("layer2.weight"), p("layer2.bias"));
        return layerNorm(y, p("norm2.weight"), p("norm2.bias"));
      }),
    dispose() {
      for (const t of parameters.values()) t.dispose();
    },
  };
}
