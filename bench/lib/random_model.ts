/**
 * Random-weight models for the step benchmarks, built on the GPU so that no
 * host array of the full model (and no f32 copy of a 7B model) ever exists:
 *
 * - {@link randomCausalLM}: embedding f32 U(±0.02·√3) (std 0.02 as HF's
 *   `initializer_range`), RMSNorm weights 1, projections and LM head
 *   U(±1/√in) (torch `nn.Linear`'s bound) in f32 or f16.
 * - {@link randomNf4CausalLM}: the same float parts, and every projection an
 *   {@link Nf4Linear} made layer by layer from random NF4 codes and block
 *   scales near 1/√in, i.e. the quantisation of some random weight. Timing does
 *   not depend on the values; only the layout must be the real one.
 *
 * @module
 */

import {
  CausalLM,
  doubleQuantize,
  expectedParameterNames,
  type ModelConfig,
  type Nf4ComputeDtype,
  Nf4Linear,
  type Nf4Weight,
  parameterShape,
  projectionPath,
  PROJECTIONS,
  type QuantizedLinear,
} from "@irforge/model";
import { ones, Rng, type Tensor } from "@irforge/tensor";
import { uniformTensor } from "./random_fill.ts";

/** Options of {@link randomCausalLM}. */
export interface RandomModelOptions {
  /** Seed of every weight (each parameter gets seed + its index). */
  seed: number;
  /** Storage of projections and the LM head (default f32). */
  weightDtype?: "f32" | "f16";
}

const EMBEDDING_BOUND = 0.02 * Math.sqrt(3);

function floatParameter(
  config: ModelConfig,
  name: string,
  seed: number,
  weightDtype: "f32" | "f16",
): Tensor {
  const shape = parameterShape(config, name);
  if (shape.length === 1) return ones(shape).keep();
  if (name === "model.embed_tokens.weight") {
    return uniformTensor(shape, "f32", seed, EMBEDDING_BOUND).keep();
  }
  return uniformTensor(shape, weightDtype, seed, 1 / Math.sqrt(shape[1]!)).keep();
}

/** A model of `config` with random weights made on the GPU (see module docs). */
export function randomCausalLM(config: ModelConfig, options: RandomModelOptions): CausalLM {
  const dtype = options.weightDtype ?? "f32";
  const params = new Map<string, Tensor>();
  expectedParameterNames(config).forEach((name, i) =>
    params.set(name, floatParameter(config, name, options.seed + i, dtype))
  );
  return new CausalLM(config, params);
}

/** Options of {@link randomNf4CausalLM}. */
export interface RandomNf4Options {
  /** Seed of every weight and code. */
  seed: number;
  /** Elements per absmax block (default 64, QLoRA's). */
  blockSize?: number;
  /** Double-quantise the block scales (QLoRA's default in its paper). */
  doubleQuant?: boolean;
  /** Storage of the LM head (default f16, as a bf16 head in bitsandbytes). */
  headDtype?: "f32" | "f16";
  /** What the NF4 matmul rounds its operands to (default f32). */
  computeDtype?: Nf4ComputeDtype;
  /** Called after each projection is uploaded. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * A random NF4 weight of `shape`: uniformly random 4-bit codes and absmax
 * values in [0.9, 1)·bound, with `bound` = 1/√in.
 */
export function randomNf4Weight(
  shape: [number, number],
  seed: number,
  options: { blockSize?: number; doubleQuant?: boolean } = {},
): Nf4Weight {
  const blockSize = options.blockSize ?? 64;
  const n = shape[0] * shape[1];
  const codes = new Uint8Array(Math.ceil(n / 2));
  const words = new Uint32Array(codes.buffer, 0, codes.length >> 2);
  // xorshift32: fast enough for 3.5 GB of codes.
  let s = (Math.imul(seed, 2654435761) + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  for (let i = words.length * 4; i < codes.length; i++) codes[i] = (seed + i * 37) & 255;
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(shape[1]);
  const absmax = new Float32Array(Math.ceil(n / blockSize));
  for (let i = 0; i < absmax.length; i++) absmax[i] = bound * (0.9 + 0.1 * rng.uniform());
  return options.doubleQuant
    ? { shape, blockSize, codes, absmax: null, doubleQuant: doubleQuantize(absmax) }
    : { shape, blockSize, codes, absmax, doubleQuant: null };
}

/**
 * A QLoRA base model of `config`: projections NF4 (built one at a time from
 * {@link randomNf4Weight}), embedding f32, norms 1, LM head `headDtype`.
 */
export function randomNf4CausalLM(config: ModelConfig, options: RandomNf4Options): CausalLM {
  const params = new Map<string, Tensor>();
  const quantized = new Map<string, QuantizedLinear>();
  const total = config.numLayers * PROJECTIONS.length;
  let done = 0;
  expectedParameterNames(config).forEach((name, i) => {
    const seed = options.seed + i;
    if (!name.endsWith("_proj.weight")) {
      params.set(name, floatParameter(config, name, seed, options.headDtype ?? "f16"));
    }
  });
  for (let l = 0; l < config.numLayers; l++) {
    for (const projection of PROJECTIONS) {
      const path = projectionPath(l, projection);
      const shape = parameterShape(config, `${path}.weight`) as [number, number];
      const weight = randomNf4Weight(shape, options.seed + 1000 + done, options);
      quantized.set(path, Nf4Linear.upload(weight, { computeDtype: options.computeDtype }));
      options.onProgress?.(++done, total);
    }
  }
  return new CausalLM(config, params, quantized);
}

/** Bytes of GPU storage held by `model`'s parameters and quantised projections. */
export function modelBytes(model: CausalLM): number {
  let bytes = 0;
  for (const p of model.params.values()) bytes += p.byteLength;
  for (const q of model.quantized.values()) {
    if (q instanceof Nf4Linear) bytes += q.byteLength;
  }
  return bytes;
}
