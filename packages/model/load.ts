/**
 * Loading a Hugging Face model directory onto the GPU and saving one back.
 *
 * @module
 */

import { join } from "node:path";
import { Tensor } from "@irforge/tensor";
import {
  CausalLM,
  expectedParameterNames,
  parameterShape,
  PROJECTIONS,
  type QuantizedLinear,
} from "./causal_lm.ts";
import { Nf4Linear } from "./qlora/nf4_linear.ts";
import { type Nf4Options, quantizeNf4Weight } from "./qlora/nf4_weight.ts";
import { loadModelConfig, type ModelConfig, saveModelConfig } from "./config.ts";
import { CheckpointError } from "./safetensors/checkpoint_error.ts";
import { openCheckpoint } from "./safetensors/checkpoint.ts";
import { saveCheckpoint } from "./safetensors/writer.ts";

/** Options of {@link loadCausalLM}. */
export interface LoadOptions {
  /** Parameter dtype on the GPU: `f32` (default) or `f16` (frozen bases). */
  dtype?: "f32" | "f16";
  /** Called after each tensor with (loaded, total) counts. */
  onProgress?: (loaded: number, total: number) => void;
  /**
   * QLoRA: quantise the seven projections of every layer to NF4 as they are
   * read (`load_in_4bit`), so the float weights never sit on the GPU.
   */
  nf4?: Nf4Options;
}

const projectionSuffixes = PROJECTIONS.map((p) => `.${p}.weight`);

/**
 * Loads `config.json` and the safetensors weights (single or sharded) of a
 * Hugging Face Mistral/Llama directory. Tensors are read one at a time, so a
 * checkpoint is never wholly in JS memory. A missing tensor or a shape that
 * disagrees with the config stops with an error naming file and tensor.
 *
 * @example Next-token logits of one prompt
 * ```ts
 * import { getDevice, noGrad } from "@irforge/tensor";
 * import { causalInputs, disposeInputs, loadCausalLM, loadTokenizer } from "@irforge/model";
 *
 * await getDevice();
 * const dir = "path/to/Mistral-7B-v0.1"; // config.json, *.safetensors, tokenizer.model
 * const model = await loadCausalLM(dir, { dtype: "f16" });
 * const tokenizer = await loadTokenizer(dir);
 * const inputs = causalInputs([tokenizer.encode("The capital of France is", { addBos: true })]);
 * const { logits } = noGrad(() => model.forward(inputs)); // [1, T, vocab]
 * console.log(logits?.shape);
 * logits?.dispose();
 * disposeInputs(inputs);
 * model.dispose();
 * ```
 */
export async function loadCausalLM(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
  const config = await loadModelConfig(dir);
  const checkpoint = await openCheckpoint(dir);
  const names = expectedParameterNames(config);
  const params = new Map<string, Tensor>();
  const quantized = new Map<string, QuantizedLinear>();
  try {
    for (const [i, name] of names.entries()) {
      if (!checkpoint.has(name)) {
        throw new CheckpointError(
          checkpoint.path,
          name,
          "the model needs this tensor but the checkpoint lacks it",
        );
      }
      const info = checkpoint.info(name);
      const expected = parameterShape(config, name);
      if (info.shape.join() !== expected.join()) {
        throw new CheckpointError(
          info.file,
          name,
          `shape [${info.shape.join(", ")}] does not match config.json, which implies [${
            expected.join(", ")
          }]`,
        );
      }
      const dtype = options.dtype ?? "f32";
      // Norm weights stay f32: they are tiny and the norm computes in f32.
      const asF16 = dtype === "f16" && expected.length === 2;
      const data = await checkpoint.read(name, { as: "f32" });
      if (options.nf4 && projectionSuffixes.some((s) => name.endsWith(s))) {
        const weight = quantizeNf4Weight(data, expected as [number, number], options.nf4);
        quantized.set(
          name.slice(0, -".weight".length),
          Nf4Linear.upload(weight, options.nf4),
        );
      } else {
        params.set(name, Tensor.fromArray(data, expected, asF16 ? "f16" : "f32").keep());
      }
      options.onProgress?.(i + 1, names.length);
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    for (const q of quantized.values()) q.dispose();
    throw e;
  } finally {
    checkpoint.close();
  }
  return new CausalLM(config, params, quantized);
}

/**
 * Builds a model from host weights by HF name (tests, merges, random init).
 * `dtype: "f16"` stores the matrices in f16 (a frozen base; norms stay f32),
 * as {@link loadCausalLM} does.
 */
export function causalLMFromArrays(
  config: ModelConfig,
  weights: Map<string, ArrayLike<number>>,
  options: { dtype?: "f32" | "f16" } = {},
): CausalLM {
  const params = new Map<string, Tensor>();
  for (const name of expectedParameterNames(config)) {
    const w = weights.get(name);
    if (!w) throw new Error(`model: weight ${name} is missing`);
    const shape = parameterShape(config, name);
    const dtype = options.dtype === "f16" && shape.length === 2 ? "f16" : "f32";
    params.set(name, Tensor.fromArray(Float32Array.from(w), shape, dtype).keep());
  }
  return new CausalLM(config, params);
}

/** Reads every parameter back to the host as f32, by HF name. */
export async function parametersToArrays(model: CausalLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.params) out.set(name, (await t.toArray()) as Float32Array);
  return out;
}

/**
 * Saves the model as a Hugging Face directory (`config.json` +
 * `model.safetensors`, sharded past `maxShardBytes`, default 2 GB) that
 * `transformers` loads. Weights are written as F32, one tensor at a time.
 */
export async function saveCausalLM(
  model: CausalLM,
  dir: string,
  options: { maxShardBytes?: number; weights?: Map<string, Float32Array> } = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await saveModelConfig(dir, model.config);
  const names = expectedParameterNames(model.config);
  const tensors = names.map((name) =>
    [name, {
      dtype: "F32" as const,
      shape: parameterShape(model.config, name),
      data: async () => {
        const given = options.weights?.get(name);
        if (given) return given;
        return (await model.params.get(name)!.toArray()) as Float32Array;
      },
    }] as const
  );
  await saveCheckpoint(dir, tensors, { maxShardBytes: options.maxShardBytes });
}

/** `dir/config.json` exists (a quick check before loading). */
export function isModelDirectory(dir: string): boolean {
  try {
    return Deno.statSync(join(dir, "config.json")).isFile;
  } catch {
    return false;
  }
}
