/**
 * Loads a trained model for inference: from a run directory (its latest
 * checkpoint), a checkpoint inside it (`checkpoints/checkpoint-<step>/`, the
 * run's `config.yaml` two levels up), or a merged Hugging Face model
 * directory (`config.json` + safetensors, e.g. from `deno task merge`).
 *
 * The model is built as its recipe built it for training (`loadModel` of
 * the run's configuration: NF4 base, LoRA adapter, random-init base from
 * `training.seed`), then the checkpoint's weights replace the fresh ones:
 * a LoRA adapter through peft's files, the full model (and a cross-encoder's
 * `score.weight`) from `model.safetensors`. The adapter's dropout is off.
 *
 * Every loaded model carries a fingerprint (SHA-256 of its weight files
 * and of the settings that shape its outputs), so an index built by one
 * model is refused by another.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { parameter, type Tensor } from "@irforge/tensor";
import { openCheckpoint } from "@irforge/model/safetensors";
import { InputError } from "@irforge/data/input-error";
import { type Config, type Recipe } from "../config/schema.ts";
import { loadConfig, parseConfig } from "../config/parse.ts";
import { listCheckpoints } from "../run_dir.ts";
import {
  disposeLoaded,
  loadCheckpointWeights,
  type LoadedModel,
  loadModel,
  loadWeights,
  setAdapterTraining,
} from "../recipes/model_setup.ts";
import { SCORE_HEAD } from "../recipes/crossencoder.ts";

/** Where a trained model comes from. */
export interface ModelSource {
  /** The run's configuration (for a merged model: one built from `recipe` and `sets`). */
  config: Config;
  /** The checkpoint directory whose weights are loaded, or `null` for a merged model. */
  checkpoint: string | null;
  /** The merged model directory, or `null` for a run checkpoint. */
  merged: string | null;
  /** One line for logs: what was found where. */
  description: string;
}

/** Options of {@link resolveModelSource} and {@link loadTrainedModel}. */
export interface ModelSourceOptions {
  /**
   * Recipe of a merged model directory (it has no run configuration):
   * default `crossencoder` when its weights hold `score.weight`, else `biencoder`.
   */
  recipe?: Recipe;
  /** `--set key=value` overrides applied to the configuration (e.g. `model.pooling=last`). */
  sets?: string[];
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function hasScoreHead(dir: string): Promise<boolean> {
  const checkpoint = await openCheckpoint(dir);
  try {
    return checkpoint.has(SCORE_HEAD);
  } finally {
    checkpoint.close();
  }
}

/**
 * Decides what `path` is (run directory, checkpoint, merged model) and reads
 * the configuration that goes with it; a path that is none of them is an
 * {@link InputError} saying what was looked for.
 */
export async function resolveModelSource(
  path: string,
  options: ModelSourceOptions = {},
): Promise<ModelSource> {
  const sets = options.sets ?? [];
  if (await isFile(join(path, "trainer_state.json"))) {
    const configPath = join(path, "..", "..", "config.yaml");
    if (!await isFile(configPath)) {
      throw new InputError(
        { file: path },
        "a checkpoint outside its run directory: the run's config.yaml (two levels up) is missing",
      );
    }
    const config = await loadConfig(configPath, sets);
    return {
      config,
      checkpoint: path,
      merged: null,
      description: `${config.recipe} checkpoint ${path}`,
    };
  }
  if (await isFile(join(path, "config.yaml"))) {
    const config = await loadConfig(join(path, "config.yaml"), sets);
    const checkpoints = await listCheckpoints(path);
    const latest = checkpoints[checkpoints.length - 1];
    if (!latest) {
      throw new InputError(
        { file: path },
        "this run directory has no complete checkpoint (checkpoints/checkpoint-<step>/ with " +
          "trainer_state.json); train with save_strategy steps or epoch",
      );
    }
    return {
      config,
      checkpoint: latest.path,
      merged: null,
      description: `${config.recipe} run ${path}, latest checkpoint ${basename(latest.path)}`,
    };
  }
  if (await isFile(join(path, "config.json"))) {
    const recipe = options.recipe ?? (await hasScoreHead(path) ? "crossencoder" : "biencoder");
    // Inference reads no training data, but the recipe's configuration requires a data source:
    // data_path names the model's own config.json, which nothing here reads as data.
    const text = `recipe: ${recipe}\nmodel:\n  model_name_or_path: ${
      JSON.stringify(path)
    }\n  use_lora: false\ndata:\n  data_path: ${JSON.stringify(join(path, "config.json"))}\n`;
    const config = parseConfig(text, join(path, "config.json"), sets);
    return {
      config,
      checkpoint: null,
      merged: path,
      description: `merged ${recipe} model ${path}`,
    };
  }
  throw new InputError(
    { file: path },
    "not a model: expected a run directory (config.yaml + checkpoints/), a checkpoint " +
      "(trainer_state.json) or a merged Hugging Face model (config.json)",
  );
}

/** The `score.weight` of a merged (possibly sharded) model directory, checked against `hidden`. */
async function mergedHead(dir: string, hidden: number): Promise<Float32Array> {
  const checkpoint = await openCheckpoint(dir);
  try {
    if (!checkpoint.has(SCORE_HEAD)) {
      throw new InputError(
        { file: dir },
        `a merged cross-encoder needs its ${SCORE_HEAD} head, which this model lacks ` +
          "(merge a cross-encoder checkpoint with deno task merge, which carries the head)",
      );
    }
    const values = await checkpoint.read(SCORE_HEAD, { as: "f32" });
    if (values.length !== hidden) {
      throw new InputError(
        { file: dir, field: SCORE_HEAD },
        `the head has ${values.length} values, the model's hidden size is ${hidden}`,
      );
    }
    return values;
  } finally {
    checkpoint.close();
  }
}

/** A trained model ready for inference. */
export interface TrainedModel extends ModelSource {
  /** Model, tokenizer and adapter, in evaluation mode (adapter dropout off). */
  loaded: LoadedModel;
  /** A cross-encoder's `score.weight` `[1, hidden]`, else `null`. */
  head: Tensor | null;
  /** SHA-256 (hex) of the weight files and of `settings`. */
  fingerprint: string;
  /** Frees the model, adapter and head. */
  dispose(): void;
}

/** Files whose bytes make up the weights of a checkpoint or merged directory. */
async function weightFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (
      entry.isFile &&
      (entry.name.endsWith(".safetensors") || entry.name === "adapter_config.json" ||
        entry.name === "config.json" || entry.name === "model.safetensors.index.json")
    ) {
      if (entry.name !== "optimizer.safetensors") names.push(entry.name);
    }
  }
  return names.sort().map((name) => join(dir, name));
}

/**
 * The fingerprint of a model: its weight files' bytes (streamed), the base
 * model it starts from and the settings that shape its outputs.
 */
export async function modelFingerprint(source: ModelSource): Promise<string> {
  const hash = createHash("sha256");
  const m = source.config.model;
  hash.update(JSON.stringify({
    recipe: source.config.recipe,
    base: m.model_name_or_path,
    use_lora: m.use_lora,
    load_in_4bit: m.load_in_4bit,
    pooling: m.pooling,
    normalize: m.normalize,
    seed: m.model_name_or_path?.startsWith("random-init:") ? source.config.training.seed : null,
    query_max_len: source.config.data.query_max_len,
    passage_max_len: source.config.data.passage_max_len,
  }));
  for (const file of await weightFiles(source.checkpoint ?? source.merged!)) {
    hash.update(basename(file));
    using handle = await Deno.open(file);
    for await (const chunk of handle.readable) hash.update(chunk);
  }
  return hash.digest("hex");
}

/**
 * Loads the model `path` names (see {@link resolveModelSource}); `log`
 * receives one line saying what was loaded.
 */
export async function loadTrainedModel(
  path: string,
  options: ModelSourceOptions & { log?: (line: string) => void } = {},
): Promise<TrainedModel> {
  const source = await resolveModelSource(path, options);
  const fingerprint = await modelFingerprint(source);
  const loaded = await loadModel(source.config);
  let head: Tensor | null = null;
  try {
    if (source.checkpoint) await loadCheckpointWeights(source.checkpoint, loaded);
    setAdapterTraining(loaded, false);
    if (source.config.recipe === "crossencoder") {
      head = parameter(new Float32Array(loaded.model.config.hiddenSize), [
        1,
        loaded.model.config.hiddenSize,
      ]);
      if (source.checkpoint) await loadWeights(source.checkpoint, new Map([[SCORE_HEAD, head]]));
      else head.write(await mergedHead(source.merged!, loaded.model.config.hiddenSize));
    }
  } catch (error) {
    head?.dispose();
    disposeLoaded(loaded);
    throw error;
  }
  options.log?.(`model: ${source.description}`);
  return {
    ...source,
    loaded,
    head,
    fingerprint,
    dispose: () => {
      head?.dispose();
      disposeLoaded(loaded);
    },
  };
}
