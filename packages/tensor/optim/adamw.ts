/**
 * AdamW (PyTorch semantics, decoupled weight decay) as one fused GPU kernel
 * per parameter:
 *
 * ```
 * p ← p − lr·wd·p
 * m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
 * p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
 * ```
 *
 * The learning rate is passed to each `step` (schedulers live in the
 * trainer). State (m, v, per-parameter step) exports to and restores from
 * plain arrays exactly. Parameters and gradients must be f32.
 *
 * @module
 */

import { zeroGrad } from "../autograd.ts";
import { getRuntime, grid } from "../runtime.ts";
import { keep } from "../scope.ts";
import { Tensor, zeros } from "../tensor.ts";
import { defineKernel } from "../kernel.ts";

/** Hyper-parameters (PyTorch defaults except weight decay). */
export interface AdamWOptions {
  /** β₁ (default 0.9). */
  beta1?: number;
  /** β₂ (default 0.999). */
  beta2?: number;
  /** ε (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, as torch.optim.AdamW). */
  weightDecay?: number;
}

/** Exported optimiser state, one entry per parameter in order. */
export interface AdamWState {
  /** Steps taken per parameter. */
  step: number[];
  /** First moments. */
  m: Float32Array[];
  /** Second moments. */
  v: Float32Array[];
}

const ADAMW = defineKernel({
  name: "adamw",
  key: () => "",
  uniforms: {
    n: "u32",
    lr: "f32",
    beta1: "f32",
    beta2: "f32",
    eps: "f32",
    weightDecay: "f32",
    stepSize: "f32",
    bc2Sqrt: "f32",
  },
  bindings: () => ({
    PARAM: { type: "array<f32>", access: "read_write" },
    M: { type: "array<f32>", access: "read_write" },
    V: { type: "array<f32>", access: "read_write" },
    G: { type: "array<f32>" },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let lr = P.lr; let b1 = P.beta1; let b2 = P.beta2;
  let eps = P.eps; let wd = P.weightDecay; let stepSize = P.stepSize; let bc2Sqrt = P.bc2Sqrt;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let grad = G[i];
  var p = PARAM[i] * (1.0 - lr * wd);
  let m = b1 * M[i] + (1.0 - b1) * grad;
  let v = b2 * V[i] + (1.0 - b2) * grad * grad;
  M[i] = m;
  V[i] = v;
  PARAM[i] = p - stepSize * m / (sqrt(v) / bc2Sqrt + eps);
}`,
});

/** AdamW over a fixed list of parameters. The optimiser owns its m/v tensors. */
export class AdamW {
  /** The parameters, in order. */
  readonly params: readonly Tensor[];
  /** Hyper-parameters. */
  readonly options: Required<AdamWOptions>;
  #m: Tensor[];
  #v: Tensor[];
  #step: number[];

  /** Creates zeroed state for `params` (f32 tensors with `requiresGrad`). */
  constructor(params: readonly Tensor[], options: AdamWOptions = {}) {
    for (const p of params) {
      if (p.dtype !== "f32") throw new Error(`AdamW: parameter ${p} must be f32`);
    }
    this.params = [...params];
    this.options = {
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0.01,
    };
    this.#m = params.map((p) => keep(zeros(p.shape)));
    this.#v = params.map((p) => keep(zeros(p.shape)));
    this.#step = params.map(() => 0);
  }

  /** Updates every parameter that has a gradient, with learning rate `lr`. */
  step(lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    const rt = getRuntime();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const t = ++this.#step[i]!;
      const bc1 = 1 - beta1 ** t, bc2 = 1 - beta2 ** t;
      rt.launch(
        ADAMW,
        undefined,
        { PARAM: p.buffer, M: this.#m[i]!.buffer, V: this.#v[i]!.buffer, G: p.grad.buffer },
        {
          n: p.size,
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          stepSize: lr / bc1,
          bc2Sqrt: Math.sqrt(bc2),
        },
        grid(Math.ceil(p.size / 256)),
      );
    });
  }

  /** Disposes the parameters' gradients. */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** Reads the state back (for checkpoints). */
  async exportState(): Promise<AdamWState> {
    return {
      step: [...this.#step],
      m: await Promise.all(this.#m.map((t) => t.toArray() as Promise<Float32Array>)),
      v: await Promise.all(this.#v.map((t) => t.toArray() as Promise<Float32Array>)),
    };
  }

  /** Restores state exported by {@link exportState} (same parameter order and sizes). */
  importState(state: AdamWState): void {
    if (state.m.length !== this.params.length || state.v.length !== this.params.length) {
      throw new Error(
        `AdamW.importState: state has ${state.m.length} parameters, optimiser ${this.params.length}`,
      );
    }
    this.params.forEach((p, i) => {
      const m = state.m[i]!, v = state.v[i]!;
      if (m.length !== p.size || v.length !== p.size) {
        throw new Error(
          `AdamW.importState: parameter ${i} has ${p.size} elements, state ${m.length}`,
        );
      }
      this.#m[i]!.dispose();
      this.#v[i]!.dispose();
      this.#m[i] = keep(Tensor.fromArray(m, p.shape));
      this.#v[i] = keep(Tensor.fromArray(v, p.shape));
      this.#step[i] = state.step[i] ?? 0;
    });
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const t of [...this.#m, ...this.#v]) t.dispose();
  }
}
