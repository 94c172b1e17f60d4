/**
 * What every recipe does with the model: load it (or initialise a tiny one
 * randomly from a `config.json`), check the adapter settings, make the
 * weights trainable, wrap the tokenizer for `@irforge/data`, and save/load
 * checkpoint weights.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { getRuntime, type Tensor } from "@irforge/tensor";
import {
  CausalLM,
  causalLMFromArrays,
  expectedParameterNames,
  loadCausalLM,
  loadModelConfig,
  loadTokenizer,
  parameterShape,
} from "@irforge/model";
import { openCheckpoint, writeSafetensors } from "@irforge/model/safetensors";
import { HashWordTokenizer, type TextTokenizer } from "@irforge/data";
import type { Config } from "../config/schema.ts";
import { Rng } from "../rng.ts";

/**
 * `model_name_or_path: random-init:<dir>` initialises a model of `<dir>/config.json`
 * randomly (HF `initializer_range` 0.02, norms 1) with a hashed-word tokenizer
 * of the config's vocabulary: the embedded default run and tests use it.
 */
export const RANDOM_INIT_PREFIX = "random-init:";

/** A model ready to train and the tokenizer that goes with it. */
export interface LoadedModel {
  /** The model (parameters trainable). */
  model: CausalLM;
  /** Tokenizer in `@irforge/data`'s interface. */
  tokenizer: TextTokenizer;
  /** Trainable parameters by name. */
  trainable: Map<string, Tensor>;
}

/** The configuration keys that ask for features not built yet, as one error. */
export function checkAdapterSettings(config: Config): void {
  if (config.model.use_lora || config.model.load_in_4bit) {
    throw new Error(
      "model.use_lora / model.load_in_4bit: LoRA/QLoRA training is not available yet " +
        "(packages/model/lora has not landed); set model.use_lora: false to fine-tune all weights",
    );
  }
}

/** Loads (or randomly initialises) the model of `config` and makes it trainable. */
export async function loadModel(config: Config): Promise<LoadedModel> {
  checkAdapterSettings(config);
  const source = config.model.model_name_or_path;
  if (source === null) throw new Error("model.model_name_or_path is required");
  let model: CausalLM;
  let tokenizer: TextTokenizer;
  if (source.startsWith(RANDOM_INIT_PREFIX)) {
    const dir = resolve(source.slice(RANDOM_INIT_PREFIX.length));
    const modelConfig = await loadModelConfig(dir);
    const rng = Rng.seeded(config.training.seed);
    const weights = new Map<string, Float32Array>();
    for (const name of expectedParameterNames(modelConfig)) {
      const shape = parameterShape(modelConfig, name);
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (shape.length === 1) values.fill(1);
      else for (let i = 0; i < values.length; i++) values[i] = rng.normal(0, 0.02);
      weights.set(name, values);
    }
    model = causalLMFromArrays(modelConfig, weights);
    tokenizer = new HashWordTokenizer(modelConfig.vocabSize);
  } else {
    model = await loadCausalLM(source);
    const sp = await loadTokenizer(source);
    const padId = sp.padId ?? sp.eosId ?? 0;
    tokenizer = {
      encode: (text: string) => sp.encode(text),
      decode: (ids: number[]) => sp.decode(ids),
      bosId: sp.bosId ?? undefined,
      eosId: sp.eosId ?? undefined,
      padId,
    };
  }
  model.setTrainable(true);
  return { model, tokenizer, trainable: model.parameters() };
}

/** Name of the full-model weights file of a checkpoint. */
export const MODEL_WEIGHTS_FILE = "model.safetensors";

/** Writes `params` (HF names) as F32 safetensors into `dir/model.safetensors`. */
export async function saveWeights(dir: string, params: Map<string, Tensor>): Promise<void> {
  const tensors = [...params].map(([name, t]) =>
    [name, {
      dtype: "F32" as const,
      shape: t.shape,
      data: async () => (await t.toArray()) as Float32Array,
    }] as const
  );
  await writeSafetensors(join(dir, MODEL_WEIGHTS_FILE), tensors, {
    metadata: { format: "pt" },
  });
}

/** Overwrites `params` in place with the tensors of `dir/model.safetensors`. */
export async function loadWeights(dir: string, params: Map<string, Tensor>): Promise<void> {
  const path = join(dir, MODEL_WEIGHTS_FILE);
  const checkpoint = await openCheckpoint(path);
  try {
    for (const [name, t] of params) {
      if (!checkpoint.has(name)) throw new Error(`${path}: tensor "${name}" is missing`);
      const data = await checkpoint.read(name, { as: "f32" });
      if (data.length !== t.size) {
        throw new Error(`${path}: tensor "${name}" has ${data.length} values, expected ${t.size}`);
      }
      getRuntime().write(t.buffer, data);
    }
  } finally {
    checkpoint.close();
  }
}
