/**
 * AdamW (PyTorch semantics, decoupled weight decay) as a multi-tensor GPU
 * kernel: one dispatch updates a group of up to 16 parameters (fewer when
 * the device allows few storage bindings), each bound in place:
 *
 * ```
 * g ← g · factor                 (clipping and loss-scale unscaling, optional)
 * p ← p − lr·wd·p
 * m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
 * p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
 * ```
 *
 * The moments of a group live in one flat buffer each (the optimizer owns
 * them), so a group binds its parameters, their gradients, M, V and the
 * factor. The learning rate is passed to each `step` (schedulers live in the
 * trainer). State (m, v, per-parameter step) exports to and restores from
 * plain arrays exactly. Parameters and gradients must be f32.
 *
 * @example One step
 * ```ts ignore
 * import { AdamW } from "@irforge/tensor";
 * const opt = new AdamW(params, { weightDecay: 0.01 });
 * opt.step(1e-4); // every parameter with a .grad, a few dispatches in all
 * opt.zeroGrad();
 * ```
 *
 * @module
 */

import { zeroGrad } from "../autograd.ts";
import { getRuntime, grid, maxBindingBytes } from "../runtime.ts";
import { keep } from "../scope.ts";
import { markUpdated } from "../storage_version.ts";
import { Tensor, zeros } from "../tensor.ts";
import { defineKernel } from "../kernel.ts";
import {
  groupTensors,
  slotAccessors,
  slotsPerLaunch,
  slotUniforms,
  slotValues,
} from "./multi_tensor.ts";

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

/** Options of one {@link AdamW.step}. */
export interface AdamWStepOptions {
  /**
   * A GPU tensor whose first element multiplies every gradient before the
   * update (e.g. `gradNormStats(...).factor`: clipping and loss-scale
   * unscaling without a pass over the gradients).
   */
  gradFactor?: Tensor;
}

const WG = 256;

const ADAMW = defineKernel({
  name: "adamw",
  key: ({ k }: { k: number }) => String(k),
  uniforms: {
    lr: "f32",
    beta1: "f32",
    beta2: "f32",
    eps: "f32",
    weightDecay: "f32",
    ...slotUniforms("n", "u32"),
    ...slotUniforms("stepSize", "f32"),
    ...slotUniforms("bc2Sqrt", "f32"),
  },
  bindings: ({ k }) => {
    const b: Record<string, { type: string; access?: "read_write" }> = {};
    for (let s = 0; s < k; s++) b[`P${s}`] = { type: "array<f32>", access: "read_write" };
    for (let s = 0; s < k; s++) b[`G${s}`] = { type: "array<f32>" };
    b.M = { type: "array<f32>", access: "read_write" };
    b.V = { type: "array<f32>", access: "read_write" };
    b.F = { type: "array<f32>" };
    return b;
  },
  source: ({ k }) => `
${slotAccessors("param", "P", k, true)}
${slotAccessors("grad", "G", k, false)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let wid = w.x + w.y * nw.x;
  var ns = array<u32, ${k}>(${Array.from({ length: k }, (_, s) => `P.n${s}`).join(", ")});
  // A slot whose bc2Sqrt is 0 has no gradient this step: no workgroup, but its moments keep their place.
  var wgs = array<u32, ${k}>(${
    Array.from({ length: k }, (_, s) =>
      `select((P.n${s} + ${WG - 1}u) / ${WG}u, 0u, P.bc2Sqrt${s} == 0.0)`)
      .join(", ")
  });
  var steps = array<f32, ${k}>(${Array.from({ length: k }, (_, s) => `P.stepSize${s}`).join(", ")});
  var bcs = array<f32, ${k}>(${Array.from({ length: k }, (_, s) => `P.bc2Sqrt${s}`).join(", ")});
  // Slot of this workgroup and where its parameter starts in the flat moments.
  var slot = ${k}u; var first = 0u; var base = 0u;
  var acc = 0u; var off = 0u;
  for (var s = 0u; s < ${k}u; s++) {
    if (slot == ${k}u && wid < acc + wgs[s]) { slot = s; first = acc; base = off; }
    acc += wgs[s];
    off += ns[s];
  }
  if (slot == ${k}u) { return; }
  let i = (wid - first) * ${WG}u + l.x;
  if (i >= ns[slot]) { return; }
  let lr = P.lr; let b1 = P.beta1; let b2 = P.beta2; let eps = P.eps; let wd = P.weightDecay;
  let g = grad(slot, i) * F[0];
  let p = param(slot, i) * (1.0 - lr * wd);
  let j = base + i;
  let m = b1 * M[j] + (1.0 - b1) * g;
  let v = b2 * V[j] + (1.0 - b2) * g * g;
  M[j] = m;
  V[j] = v;
  param_store(slot, i, p - steps[slot] * m / (sqrt(v) / bcs[slot] + eps));
}`,
});

interface Group {
  /** Indices into `params`. */
  members: number[];
  /** Flat moments of the group's parameters, in member order. */
  m: Tensor;
  v: Tensor;
  /** Element offset of each member in `m`/`v`. */
  offsets: number[];
}

/** AdamW over a fixed list of parameters. The optimiser owns its m/v tensors. */
export class AdamW {
  /** The parameters, in order. */
  readonly params: readonly Tensor[];
  /** Hyper-parameters. */
  readonly options: Required<AdamWOptions>;
  #groups: Group[];
  #step: number[];
  #one: Tensor;

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
    // Per slot: the parameter and its gradient; fixed: M, V and the factor.
    const slots = slotsPerLaunch(2, 3);
    const indexed = this.params.map((p, i) => ({ size: p.size, i }));
    this.#groups = groupTensors(indexed, slots, Math.floor(maxBindingBytes() / 4)).map((g) => {
      const offsets: number[] = [];
      let total = 0;
      for (const { size } of g) offsets.push(total), total += size;
      return {
        members: g.map(({ i }) => i),
        m: keep(zeros([Math.max(1, total)])),
        v: keep(zeros([Math.max(1, total)])),
        offsets,
      };
    });
    this.#step = params.map(() => 0);
    this.#one = keep(Tensor.fromArray([1, 0], [2]));
  }

  /** Dispatches one step takes when every parameter has a gradient. */
  get launchesPerStep(): number {
    return this.#groups.length;
  }

  /** Updates every parameter that has a gradient, with learning rate `lr`. */
  step(lr: number, options: AdamWStepOptions = {}): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    const rt = getRuntime();
    const factor = options.gradFactor ?? this.#one;
    for (const group of this.#groups) {
      const n: number[] = [], stepSize: number[] = [], bc2Sqrt: number[] = [];
      const buffers: Record<string, GPUBuffer> = {
        M: group.m.buffer,
        V: group.v.buffer,
        F: factor.buffer,
      };
      let workgroups = 0;
      group.members.forEach((index, s) => {
        const p = this.params[index]!;
        buffers[`P${s}`] = p.buffer;
        // A parameter without a gradient covers no workgroup (its gradient binding is a stand-in).
        buffers[`G${s}`] = p.grad?.buffer ?? this.#one.buffer;
        if (!p.grad) {
          n.push(p.size), stepSize.push(0), bc2Sqrt.push(0);
          return;
        }
        const t = ++this.#step[index]!;
        n.push(p.size);
        stepSize.push(lr / (1 - beta1 ** t));
        bc2Sqrt.push(Math.sqrt(1 - beta2 ** t));
        workgroups += Math.ceil(p.size / WG);
      });
      if (workgroups === 0) continue;
      // Copies derived from the parameters (f16 weight caches) see them change.
      markUpdated(group.members.map((i) => this.params[i]!).filter((p) => p.grad));
      rt.launch(
        ADAMW,
        { k: group.members.length },
        buffers,
        {
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          ...slotValues("n", n),
          ...slotValues("stepSize", stepSize),
          ...slotValues("bc2Sqrt", bc2Sqrt),
        },
        grid(workgroups),
      );
    }
  }

  /** Disposes the parameters' gradients. */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** Reads the state back (for checkpoints). */
  async exportState(): Promise<AdamWState> {
    const m: Float32Array[] = [], v: Float32Array[] = [];
    for (const group of this.#groups) {
      const [gm, gv] = await Promise.all([group.m.toArray(), group.v.toArray()]);
      group.members.forEach((index, s) => {
        const at = group.offsets[s]!, size = this.params[index]!.size;
        m[index] = Float32Array.from(gm.subarray(at, at + size));
        v[index] = Float32Array.from(gv.subarray(at, at + size));
      });
    }
    return { step: [...this.#step], m, v };
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
    });
    for (const group of this.#groups) {
      const gm = new Float32Array(group.m.size), gv = new Float32Array(group.v.size);
      group.members.forEach((index, s) => {
        gm.set(state.m[index]!, group.offsets[s]!);
        gv.set(state.v[index]!, group.offsets[s]!);
      });
      group.m.write(gm);
      group.v.write(gv);
    }
    this.params.forEach((_, i) => this.#step[i] = state.step[i] ?? 0);
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const g of this.#groups) g.m.dispose(), g.v.dispose();
    this.#one.dispose();
  }
}
