/**
 * The `blockrank` dialect: a configuration file of BlockRank
 * (nilesh2797/BlockRank, `scripts/train.py --config`) with its `model` /
 * `data` / `training` sections, read as BlockRank reads it and turned into an
 * irforge `blockrank` run. Keys BlockRank leaves out take BlockRank's own
 * defaults (its `ModelArgs`/`DataArgs`/`TrainArgs`), not irforge's.
 *
 * Differences that change a number are translated, not copied: BlockRank's
 * `train_test_split` is the fraction kept for *training* (0.99 holds out 1%),
 * irforge's the fraction held out; every BlockRank attention backend
 * (`eager_blockrank`, `default_blockrank`, …) runs irforge's one fused
 * block-sparse kernel, said in one log line.
 *
 * @module
 */

import { HF_TRAINING_ARGUMENTS, intOf, mapTrainingArgument } from "./hf_training_args.ts";
import {
  boolOf,
  numberOf,
  stringOf,
  Translation,
  type UpstreamDocument,
  type UpstreamValue,
} from "./upstream_yaml.ts";

/** BlockRank's attention backends (`register_*_blockrank_attention`). */
export const BLOCKRANK_ATTENTION = [
  "eager_blockrank",
  "default_blockrank",
  "max-autotune_blockrank",
  "sdpa_blockrank",
  "sdpa_compiled_blockrank",
  "flex_blockrank",
  "triton_blockrank",
  "triton_blockrank_compiled",
] as const;

/** BlockRank's `ModelArgs` fields. */
const MODEL_KEYS = [
  "model_name_or_path",
  "use_4bit",
  "use_lora",
  "lora_r",
  "lora_alpha",
  "lora_dropout",
  "lora_target_modules",
  "trust_remote_code",
  "use_blockrank",
  "attn_implementation",
];

/** BlockRank's `DataArgs` fields (and `pad_to_multiple_of`, which its guide documents). */
const DATA_KEYS = [
  "data_path",
  "val_data_path",
  "num_documents",
  "streaming",
  "train_test_split",
  "max_seq_length",
  "dataset_seed",
  "max_block_length",
  "qrels_path",
  "pad_to_multiple_of",
];

/** BlockRank's additions to `SFTConfig`. */
const AUX_KEYS = ["use_aux_loss", "aux_layer_idx", "aux_loss_weight", "aux_temperature"];

/** peft's default targets in BlockRank's `ModelArgs`: all seven projections. */
const ALL_PROJECTIONS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
];

/** BlockRank `TrainArgs` defaults that differ from irforge's, applied when the file leaves them out. */
const TRAINING_DEFAULTS: Record<string, unknown> = {
  num_train_epochs: 3,
  per_device_train_batch_size: 1,
  per_device_eval_batch_size: 1,
  gradient_accumulation_steps: 4,
  learning_rate: 2e-4,
  weight_decay: 0.01,
  warmup_ratio: 0.03,
  lr_scheduler_type: "cosine",
  logging_steps: 10,
  save_steps: 100,
  eval_steps: 100,
  save_total_limit: 3,
  save_strategy: "no",
  gradient_checkpointing: true,
  aux_layer_idx: 20,
  aux_loss_weight: 0.1,
  aux_temperature: 0.1,
};

/** Whether `doc` looks like a BlockRank configuration (no `recipe`, BlockRank's own keys). */
export function looksLikeBlockRank(doc: UpstreamDocument): boolean {
  if (doc.has("recipe")) return false;
  const model = doc.get("model")?.children;
  const data = doc.get("data")?.children;
  const training = doc.get("training")?.children;
  const attn = model?.get("attn_implementation")?.value;
  return model?.has("use_blockrank") === true ||
    (typeof attn === "string" && attn.endsWith("_blockrank")) ||
    training?.has("use_aux_loss") === true ||
    data?.has("max_block_length") === true;
}

/** Translates a BlockRank configuration into irforge keys (recipe `blockrank`). */
export function translateBlockRank(doc: UpstreamDocument, file: string): Translation {
  const t = new Translation();
  t.entries.push({
    path: "recipe",
    value: "blockrank",
    where: { file, field: "dialect blockrank" },
  });
  t.mapping.push(`(dialect blockrank) → recipe: "blockrank"`);
  const sectionKeys = ["model", "data", "training"];
  for (const [key, entry] of doc) {
    if (key === "dialect") continue;
    if (!sectionKeys.includes(key)) {
      t.unknown(entry.where, sectionKeys, "BlockRank top-level");
      continue;
    }
    if (entry.value !== null && !entry.children) {
      t.refuse(entry.where, `section "${key}" must be a map of keys`);
    }
  }
  const model = doc.get("model")?.children ?? new Map<string, UpstreamValue>();
  const data = doc.get("data")?.children ?? new Map<string, UpstreamValue>();
  const training = doc.get("training")?.children ?? new Map<string, UpstreamValue>();
  translateModel(t, model, file);
  translateData(t, data, training, file);
  translateTraining(t, training, file);
  return t;
}

function translateModel(t: Translation, model: Map<string, UpstreamValue>, file: string): void {
  let useLora = false;
  let blockrank = false;
  for (const [key, entry] of model) {
    const { where } = entry;
    switch (key) {
      case "model_name_or_path":
      case "lora_alpha":
      case "lora_dropout":
        t.set(`model.${key}`, entry.value, where);
        break;
      case "lora_r":
        t.set("model.lora_r", entry.value, where);
        break;
      case "use_lora":
        useLora = boolOf(t, entry) ?? false;
        t.set("model.use_lora", entry.value, where);
        break;
      case "use_blockrank":
        blockrank = blockrank || (boolOf(t, entry) ?? false);
        t.set("model.use_blockrank", entry.value, where);
        break;
      case "lora_target_modules":
        t.set("model.lora_target_modules", targetModules(entry.value), where);
        break;
      case "use_4bit":
        if (boolOf(t, entry)) {
          // BlockRank's BitsAndBytesConfig: NF4, double quantisation, bf16 compute.
          t.set("model.load_in_4bit", true, where);
          t.set("model.bnb_4bit_use_double_quant", true, where);
          t.set("model.bnb_4bit_compute_dtype", "bfloat16", where);
        }
        break;
      case "trust_remote_code":
        if (boolOf(t, entry)) {
          t.refuse(
            where,
            "trust_remote_code is not supported: irforge runs no model code from checkpoints",
          );
        }
        break;
      case "attn_implementation":
        blockrank = attention(t, entry) || blockrank;
        break;
      default:
        t.unknown(where, MODEL_KEYS, "BlockRank model");
    }
  }
  if (!model.has("use_lora")) t.setDefault("model.use_lora", false, file, "use_lora false");
  if (useLora) {
    if (!model.has("lora_r") || !model.has("lora_alpha")) {
      t.refuse(
        model.get("use_lora")!.where,
        "use_lora needs lora_r and lora_alpha (BlockRank's defaults, -1, are not a rank)",
      );
    }
    if (!model.has("lora_dropout")) t.setDefault("model.lora_dropout", 0, file, "lora_dropout 0.0");
    if (!model.has("lora_target_modules")) {
      t.setDefault("model.lora_target_modules", ALL_PROJECTIONS, file, "all seven projections");
    }
  }
  // train.py turns BlockRank on whenever the attention backend is a BlockRank one.
  if (blockrank && !model.has("use_blockrank")) {
    t.setDefault("model.use_blockrank", true, file, "attn_implementation *_blockrank");
  }
}

/** BlockRank writes targets as a comma list ("q_proj,v_proj") or, in its guide, a YAML list. */
function targetModules(value: unknown): unknown {
  if (typeof value === "string" && value !== "all-linear") {
    return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }
  return value;
}

/** Maps `attn_implementation`; returns whether it selects BlockRank attention. */
function attention(t: Translation, entry: UpstreamValue): boolean {
  const value = stringOf(t, entry);
  if (value === undefined) return false;
  if ((BLOCKRANK_ATTENTION as readonly string[]).includes(value)) {
    t.set("model.attn_implementation", "blockrank", entry.where);
    t.note(
      entry.where,
      `"${value}" runs irforge's fused block-sparse BlockRank attention kernel ` +
        "(one WebGPU kernel stands for all of BlockRank's backends; it trains and evaluates)",
    );
    return true;
  }
  if (value === "" || value === "eager" || value === "sdpa") {
    if (value !== "") t.set("model.attn_implementation", value, entry.where);
    return false;
  }
  t.refuse(
    entry.where,
    `attn_implementation "${value}" is not supported: use one of ${
      BLOCKRANK_ATTENTION.join(", ")
    } (all run irforge's BlockRank kernel), eager or sdpa`,
  );
  return false;
}

function translateData(
  t: Translation,
  data: Map<string, UpstreamValue>,
  training: Map<string, UpstreamValue>,
  file: string,
): void {
  for (const [key, entry] of data) {
    const { where } = entry;
    switch (key) {
      case "data_path":
      case "qrels_path":
      case "max_seq_length":
      case "dataset_seed":
      case "max_block_length":
      case "pad_to_multiple_of":
        t.set(`data.${key}`, entry.value, where);
        break;
      case "val_data_path":
        if (entry.value !== null) t.set("data.eval_data_path", entry.value, where);
        break;
      case "num_documents": {
        const n = intOf(t, entry);
        if (n !== undefined && n < 1) {
          t.refuse(
            where,
            `num_documents ${n} (every document) is not supported: irforge lays out a fixed ` +
              "number of documents per prompt; give that number",
          );
        } else if (n !== undefined) t.set("data.num_documents", n, where);
        break;
      }
      case "streaming":
        if (boolOf(t, entry)) {
          t.refuse(
            where,
            "streaming is not supported: irforge reads the data file before training",
          );
        }
        break;
      case "train_test_split":
        trainTestSplit(
          t,
          entry,
          data.has("val_data_path") && data.get("val_data_path")!.value !== null,
        );
        break;
      default:
        t.unknown(where, DATA_KEYS, "BlockRank data");
    }
  }
  if (!data.has("num_documents")) {
    t.refuse(
      { file, field: "data.num_documents" },
      "num_documents is missing (BlockRank's default: every document); irforge lays out a " +
        "fixed number of documents per prompt: set it",
    );
  }
  if (!data.has("max_block_length")) {
    t.setDefault("data.max_block_length", 256, file, "max_block_length 256");
  }
  const hasVal = data.get("val_data_path")?.value != null;
  if (!data.has("train_test_split") && !hasVal) {
    t.setDefault("data.train_test_split", 0.01, file, "train_test_split 0.99 (1% held out)");
  }
  // train.py turns evaluation off when no validation set exists (train_test_split 1.0).
  const split = data.get("train_test_split")?.value;
  const noEval = !hasVal && typeof split === "number" && split >= 1;
  const evalSet = training.has("eval_strategy") || training.has("evaluation_strategy") ||
    training.has("do_eval");
  if (!evalSet) {
    t.setDefault(
      "training.eval_strategy",
      noEval ? "no" : "steps",
      file,
      noEval ? "no validation set: no evaluation" : 'evaluation_strategy "steps"',
    );
  }
}

/** BlockRank's `train_test_split` keeps that fraction for training; irforge's holds it out. */
function trainTestSplit(t: Translation, entry: UpstreamValue, hasVal: boolean): void {
  const keep = numberOf(t, entry);
  if (keep === undefined) return;
  if (hasVal) {
    t.note(entry.where, "ignored as BlockRank ignores it: val_data_path is the evaluation set");
    return;
  }
  if (keep <= 0) {
    t.refuse(
      entry.where,
      `train_test_split ${keep} puts every example in the test split (evaluation only), ` +
        "which the train command does not support",
    );
    return;
  }
  const heldOut = keep >= 1 ? 0 : Number((1 - keep).toPrecision(12));
  t.set("data.train_test_split", heldOut, entry.where);
  t.note(
    entry.where,
    `${keep} of the examples train (BlockRank's meaning) → irforge data.train_test_split ${heldOut} (held out)`,
  );
}

function translateTraining(
  t: Translation,
  training: Map<string, UpstreamValue>,
  file: string,
): void {
  const auxLoss = training.get("use_aux_loss")?.value === true;
  for (const [key, entry] of training) {
    if (AUX_KEYS.includes(key)) {
      t.set(`training.${key}`, entry.value, entry.where);
      continue;
    }
    if (mapTrainingArgument(t, key, entry)) continue;
    t.unknown(entry.where, [...HF_TRAINING_ARGUMENTS, ...AUX_KEYS], "BlockRank training");
  }
  for (const [key, value] of Object.entries(TRAINING_DEFAULTS)) {
    if (training.has(key)) continue;
    // warmup_ratio and warmup_steps are exclusive in irforge; the file's choice wins.
    if (key === "warmup_ratio" && training.has("warmup_steps")) continue;
    // The auxiliary-loss defaults only matter (upstream) when the loss is on.
    if (key.startsWith("aux_") && !auxLoss) continue;
    t.setDefault(`training.${key}`, value, file, `${key} ${JSON.stringify(value)}`);
  }
}
