/**
 * What every recipe does with the model: load it (or initialise a tiny one
 * randomly from a `config.json`), optionally in 4-bit NF4 (QLoRA) and with a
 * LoRA adapter, make the right weights trainable, wrap the tokenizer for
 * `@irforge/data`, and save/load checkpoint weights (the full model, or the
 * adapter alone in peft's format).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { currentDevice, getDevice, type Tensor } from "@irforge/tensor";
import {
  ADAPTER_CONFIG_NAME,
  CausalLM,
  causalLMFromArrays,
  expectedParameterNames,
  loadCausalLM,
  loadModelConfig,
  loadTokenizer,
  LoraAdapter,
  loraConfigFromTrainerConfig,
  type Nf4ComputeDtype,
  type Nf4Options,
  parameterShape,
  quantizeModelNf4,
  readLoraAdapter,
  saveLoraAdapter,
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
  /** The model (base frozen when an adapter is attached). */
  model: CausalLM;
  /** Tokenizer in `@irforge/data`'s interface. */
  tokenizer: TextTokenizer;
  /** Trainable parameters by name: the adapter's (peft keys) with LoRA, else the model's. */
  trainable: Map<string, Tensor>;
  /** The LoRA adapter (`model.use_lora`), else `null`. */
  adapter: LoraAdapter | null;
}

/** `model.bnb_4bit_compute_dtype` → the NF4 kernel's compute dtype. */
const NF4_COMPUTE: Record<Config["model"]["bnb_4bit_compute_dtype"], Nf4ComputeDtype> = {
  float32: "f32",
  float16: "f16",
  bfloat16: "bf16",
};

/**
 * The GPU storage of the model's matrices from `model.dtype`: `auto` and
 * `float32` → f32; `float16` → f16, for a frozen base only (with `use_lora`:
 * the optimiser keeps f32 weights). WebGPU has no bf16 type, so `bfloat16`
 * is refused with the two choices that exist (f32 holds bf16 exactly).
 */
export function weightStorageDtype(config: Config): "f32" | "f16" {
  const m = config.model;
  switch (m.dtype) {
    case "auto":
    case "float32":
      return "f32";
    case "bfloat16":
      throw new Error(
        'model.dtype: "bfloat16" has no WebGPU storage type; use float32 (holds bf16 ' +
          "checkpoints exactly) or float16 (a frozen base with use_lora: true)",
      );
    case "float16":
      if (!m.use_lora) {
        throw new Error(
          'model.dtype: "float16" keeps frozen weights in f16, but a full fine-tune trains ' +
            "every weight (and AdamW updates f32 weights); set model.use_lora: true or " +
            "model.dtype: float32",
        );
      }
      if (!currentDevice().hasF16) {
        throw new Error(
          'model.dtype: "float16" needs the adapter\'s shader-f16 feature, which ' +
            `${currentDevice().adapter.description || "this adapter"} lacks; use float32`,
        );
      }
      return "f16";
  }
}

/**
 * Checks the model settings before anything loads (see
 * {@link weightStorageDtype}; `bnb_4bit_compute_dtype: float16` also needs
 * shader-f16).
 */
export function checkAdapterSettings(config: Config): void {
  weightStorageDtype(config);
  const m = config.model;
  if (m.load_in_4bit && m.bnb_4bit_compute_dtype === "float16" && !currentDevice().hasF16) {
    throw new Error(
      'model.bnb_4bit_compute_dtype: "float16" needs the adapter\'s shader-f16 feature, ' +
        "which it lacks; use bfloat16 or float32",
    );
  }
}

/**
 * Loads (or randomly initialises) the model of `config`: NF4 base weights
 * with `load_in_4bit`, a fresh LoRA adapter (seeded by `training.seed`) with
 * `use_lora` — then only the adapter trains — and activation checkpointing
 * with `gradient_checkpointing`.
 */
export async function loadModel(config: Config): Promise<LoadedModel> {
  await getDevice();
  checkAdapterSettings(config);
  const m = config.model;
  const source = m.model_name_or_path;
  if (source === null) throw new Error("model.model_name_or_path is required");
  const dtype = weightStorageDtype(config);
  const nf4: Nf4Options | undefined = m.load_in_4bit
    ? {
      doubleQuant: m.bnb_4bit_use_double_quant,
      computeDtype: NF4_COMPUTE[m.bnb_4bit_compute_dtype],
    }
    : undefined;
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
    model = causalLMFromArrays(modelConfig, weights, { dtype });
    if (nf4) await quantizeModelNf4(model, nf4);
    tokenizer = new HashWordTokenizer(modelConfig.vocabSize);
  } else {
    model = await loadCausalLM(source, nf4 ? { nf4, dtype } : { dtype });
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
  model.gradientCheckpointing = config.training.gradient_checkpointing;
  model.autocast = config.training.fp16 ? "f16" : null;
  if (!m.use_lora) {
    model.setTrainable(true);
    return { model, tokenizer, trainable: model.parameters(), adapter: null };
  }
  const loraConfig = loraConfigFromTrainerConfig({ ...m, model_name_or_path: source });
  const adapter = LoraAdapter.create(model.config, loraConfig, { seed: config.training.seed })
    .attach(model);
  adapter.training = true;
  return { model, tokenizer, trainable: adapter.parameters(), adapter };
}

/**
 * Gives the adapter's dropout a fresh, checkpointed starting point for one
 * micro-batch: its call counter comes from the trainer's `rng`, so a resumed
 * run draws the same dropout masks as an uninterrupted one.
 */
export function seedAdapterDropout(loaded: LoadedModel, rng: Rng): void {
  if (loaded.adapter && loaded.adapter.config.loraDropout > 0) {
    loaded.adapter.restoreState(rng.next());
  }
}

/** Switches adapter dropout on (training) or off (evaluation). */
export function setAdapterTraining(loaded: LoadedModel, training: boolean): void {
  if (loaded.adapter) loaded.adapter.training = training;
}

/**
 * Writes a checkpoint's weights: the adapter in peft's format
 * (`adapter_config.json` + `adapter_model.safetensors`) with LoRA, else the
 * full model as `model.safetensors`.
 */
export async function saveCheckpointWeights(dir: string, loaded: LoadedModel): Promise<void> {
  if (loaded.adapter) await saveLoraAdapter(loaded.adapter, dir);
  else await saveWeights(dir, loaded.trainable);
}

/**
 * Loads what {@link saveCheckpointWeights} wrote back into the live tensors
 * (in place, so the optimiser keeps its references). An adapter must match
 * the configured one (rank, modules, shapes); errors name the file.
 */
export async function loadCheckpointWeights(dir: string, loaded: LoadedModel): Promise<void> {
  if (!loaded.adapter) return await loadWeights(dir, loaded.trainable);
  const adapter = loaded.adapter;
  const saved = await readLoraAdapter(dir, loaded.model.config);
  const where = join(dir, ADAPTER_CONFIG_NAME);
  if (saved.config.r !== adapter.config.r || saved.config.loraAlpha !== adapter.config.loraAlpha) {
    throw new Error(
      `${where}: r ${saved.config.r} / lora_alpha ${saved.config.loraAlpha} differ from the ` +
        `configured r ${adapter.config.r} / lora_alpha ${adapter.config.loraAlpha}`,
    );
  }
  const missing = [...adapter.modules.keys()].filter((path) => !saved.modules.has(path));
  const extra = [...saved.modules.keys()].filter((path) => !adapter.modules.has(path));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `${saved.file}: adapted modules differ from the configuration (missing: ${
        missing.join(", ") || "none"
      }; not configured: ${extra.join(", ") || "none"})`,
    );
  }
  for (const [path, { a, b }] of adapter.modules) {
    const arrays = saved.modules.get(path)!;
    a.write(arrays.a);
    b.write(arrays.b);
  }
}

/** Frees the model and its adapter. */
export function disposeLoaded(loaded: LoadedModel): void {
  loaded.adapter?.dispose();
  loaded.model.dispose();
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
      t.write(data);
    }
  } finally {
    checkpoint.close();
  }
}
