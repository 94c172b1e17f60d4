/**
 * `LoraAdapter`: low-rank adapters on a model's linear projections, as peft
 * computes them: `y = W·x + scaling · B·(A·dropout(x))` with A `[r, in]`,
 * B `[out, r]`, scaling α/r (α/√r with rsLoRA). The base model stays frozen;
 * only A and B are parameters.
 *
 * Initialisation is peft's default (`init_lora_weights=True`): A from
 * `nn.init.kaiming_uniform_(A, a=√5)`, i.e. U(−b, b) with
 * b = √3 · √(2/(1+a²)) / √fan_in = 1/√in_features, and B = 0, so a fresh
 * adapter leaves the model's outputs unchanged. Draws come from the engine's
 * seeded xoshiro generator (not torch's), in layer-then-projection order.
 *
 * @module
 */

import { dropout, linear, Rng, scale, Tensor, variable } from "@irforge/tensor";
import {
  type CausalLM,
  parameterShape,
  type ProjectionDelta,
  projectionPath,
} from "../causal_lm.ts";
import type { ModelConfig } from "../config.ts";
import { type LoraConfig, loraScaling } from "./config.ts";

/** The two factors of one adapted projection. */
export interface LoraModule {
  /** `[r, in]` f32. */
  a: Tensor;
  /** `[out, r]` f32. */
  b: Tensor;
}

/** Host copies of one module's factors (row-major f32). */
export interface LoraModuleArrays {
  /** `[r, in]`. */
  a: Float32Array;
  /** `[out, r]`. */
  b: Float32Array;
}

/** peft's saved key of a factor: `base_model.model.<path>.lora_A.weight`. */
export function peftWeightKey(path: string, factor: "A" | "B"): string {
  return `base_model.model.${path}.lora_${factor}.weight`;
}

/**
 * peft's parameter name of a factor in a live `PeftModel` (what
 * `named_parameters()` and the parity fixture's gradients use):
 * `base_model.model.<path>.lora_A.<adapter>.weight`.
 */
export function peftParameterName(
  path: string,
  factor: "A" | "B",
  adapterName = "default",
): string {
  return `base_model.model.${path}.lora_${factor}.${adapterName}.weight`;
}

/** Module paths that get adapters under `config`, in layer-then-projection order. */
export function loraTargetPaths(model: ModelConfig, config: LoraConfig): string[] {
  const paths: string[] = [];
  for (let l = 0; l < model.numLayers; l++) {
    if (config.layersToTransform && !config.layersToTransform.includes(l)) continue;
    for (const proj of config.targetModules) paths.push(projectionPath(l, proj));
  }
  return paths;
}

/** `[out, in]` of the projection at module `path`. */
export function projectionShape(model: ModelConfig, path: string): [number, number] {
  return parameterShape(model, `${path}.weight`) as [number, number];
}

/** Options of {@link LoraAdapter.create}. */
export interface LoraInitOptions {
  /** Seed of the A initialisation and of dropout masks. */
  seed: number;
}

/**
 * LoRA adapters on a set of projections. Attach with {@link attach}; the
 * adapter then adds its delta inside `CausalLM.project`.
 *
 * Ownership: the adapter owns its factor tensors (`dispose()`).
 */
export class LoraAdapter implements ProjectionDelta {
  /** The configuration (peft fields). */
  readonly config: LoraConfig;
  /** α/r or α/√r. */
  readonly scaling: number;
  /** Factors by HF module path. */
  readonly modules: Map<string, LoraModule>;
  /** Dropout is applied only while training. */
  training = false;
  #seed: number;
  #dropoutCalls = 0;

  /** The dropout call counter, so activation checkpointing can rewind it (`ReplayableState`). */
  saveState(): unknown {
    return this.#dropoutCalls;
  }

  /** Restores the counter saved by {@link saveState}: a re-run draws the same dropout masks. */
  restoreState(state: unknown): void {
    this.#dropoutCalls = state as number;
  }

  /** Wraps factor tensors (taken over). */
  constructor(config: LoraConfig, modules: Map<string, LoraModule>, seed = 0) {
    this.config = config;
    this.scaling = loraScaling(config);
    this.modules = modules;
    this.#seed = seed >>> 0;
  }

  /** A fresh adapter with peft's initialisation (A Kaiming-uniform, B zero). */
  static create(model: ModelConfig, config: LoraConfig, options: LoraInitOptions): LoraAdapter {
    const rng = new Rng(options.seed);
    const arrays = new Map<string, LoraModuleArrays>();
    for (const path of loraTargetPaths(model, config)) {
      const [out, inFeatures] = projectionShape(model, path);
      const bound = 1 / Math.sqrt(inFeatures);
      const a = new Float32Array(config.r * inFeatures);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
      arrays.set(path, { a, b: new Float32Array(out * config.r) });
    }
    return LoraAdapter.fromArrays(config, arrays, options.seed);
  }

  /** Uploads host factors (e.g. read from a peft file). */
  static fromArrays(
    config: LoraConfig,
    arrays: Map<string, LoraModuleArrays>,
    seed = 0,
  ): LoraAdapter {
    const modules = new Map<string, LoraModule>();
    for (const [path, { a, b }] of arrays) {
      const inFeatures = a.length / config.r, out = b.length / config.r;
      modules.set(path, {
        a: Tensor.fromArray(a, [config.r, inFeatures]).keep(),
        b: Tensor.fromArray(b, [out, config.r]).keep(),
      });
    }
    return new LoraAdapter(config, modules, seed);
  }

  /** `scaling · B·(A·dropout(x))` for an adapted module, else `null`. */
  delta(path: string, x: Tensor): Tensor | null {
    const m = this.modules.get(path);
    if (!m) return null;
    const p = this.config.loraDropout;
    // Each call gets its own mask: seed mixed with a running call counter.
    const input = this.training && p > 0
      ? dropout(x, p, loraDropoutSeed(this.#seed, this.#dropoutCalls++))
      : x;
    return scale(linear(linear(input, m.a), m.b), this.scaling);
  }

  /** Makes the factors trainable (leaf tensors receiving `.grad`) or frozen. */
  setTrainable(trainable: boolean): void {
    for (const { a, b } of this.modules.values()) {
      for (const t of [a, b]) {
        if (trainable) variable(t);
        else t.requiresGrad = false;
      }
    }
  }

  /**
   * Installs the adapter on `model`, freezes every base parameter and makes
   * the factors trainable: only adapter parameters get gradients.
   */
  attach(model: CausalLM): this {
    for (const path of this.modules.keys()) {
      const [out, inFeatures] = projectionShape(model.config, path);
      const m = this.modules.get(path)!;
      if (m.a.shape[1] !== inFeatures || m.b.shape[0] !== out) {
        throw new Error(
          `LoRA: module ${path} has A ${m.a} and B ${m.b}, the model's projection is [${out}, ${inFeatures}]`,
        );
      }
    }
    model.setTrainable(false);
    this.setTrainable(true);
    model.adapter = this;
    return this;
  }

  /**
   * Trainable parameters by peft's saved key (`base_model.model.<path>.lora_A.weight`):
   * what the optimiser and `saveLoraAdapter` see.
   */
  parameters(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, { a, b }] of this.modules) {
      out.set(peftWeightKey(path, "A"), a);
      out.set(peftWeightKey(path, "B"), b);
    }
    return out;
  }

  /** Parameters by peft's live parameter name (`…lora_A.default.weight`), as in gradients. */
  namedParameters(adapterName = "default"): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, { a, b }] of this.modules) {
      out.set(peftParameterName(path, "A", adapterName), a);
      out.set(peftParameterName(path, "B", adapterName), b);
    }
    return out;
  }

  /** Reads the factors back to the host. */
  async toArrays(): Promise<Map<string, LoraModuleArrays>> {
    const out = new Map<string, LoraModuleArrays>();
    for (const [path, { a, b }] of this.modules) {
      out.set(path, {
        a: (await a.toArray()) as Float32Array,
        b: (await b.toArray()) as Float32Array,
      });
    }
    return out;
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    let n = 0;
    for (const { a, b } of this.modules.values()) n += a.size + b.size;
    return n;
  }

  /** Frees the factors (and their gradients). */
  dispose(): void {
    for (const { a, b } of this.modules.values()) {
      for (const t of [a, b]) {
        t.grad?.dispose();
        t.grad = null;
        t.dispose();
      }
    }
  }
}

/**
 * Dropout seed of the adapter's `call`-th dropout application (0-based,
 * counted over all modules in call order) for adapter seed `seed`: a
 * splitmix32-style mix, so masks differ per call but are reproducible.
 */
export function loraDropoutSeed(seed: number, call: number): number {
  let z = ((seed >>> 0) ^ Math.imul(call + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
