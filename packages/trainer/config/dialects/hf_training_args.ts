/**
 * HF `TrainingArguments` (and peft/bitsandbytes names next to them) → irforge
 * keys, shared by the dialects whose upstream parses them with
 * `HfArgumentParser`: BlockRank's `training:` section and qa-expert's
 * `train_model` flags. Each argument either maps, is noted (irforge does the
 * same thing another way and says so), or is refused with a sentence.
 *
 * @module
 */

import { SCHEDULER_TYPES } from "../schema.ts";
import {
  boolOf,
  numberOf,
  stringOf,
  type Translation,
  type UpstreamValue,
} from "./upstream_yaml.ts";

/** `TrainingArguments` fields that are irforge `training.*` keys of the same name and meaning. */
const SAME_NAME = [
  "output_dir",
  "num_train_epochs",
  "max_steps",
  "per_device_train_batch_size",
  "per_device_eval_batch_size",
  "gradient_accumulation_steps",
  "learning_rate",
  "weight_decay",
  "warmup_ratio",
  "warmup_steps",
  "adam_beta1",
  "adam_beta2",
  "adam_epsilon",
  "max_grad_norm",
  "logging_steps",
  "save_steps",
  "save_total_limit",
  "eval_steps",
  "gradient_checkpointing",
  "seed",
  "run_name",
  "greater_is_better",
  "resume_from_checkpoint",
] as const;

/** Optimisers that are AdamW: irforge runs its f32 AdamW for all of them. */
const ADAMW = [
  "adamw_torch",
  "adamw_hf",
  "adamw_torch_fused",
  "adamw_8bit",
  "paged_adamw_8bit",
  "paged_adamw_32bit",
  "adamw_bnb_8bit",
];

/** Every `TrainingArguments` name {@linkcode mapTrainingArgument} accepts. */
export const HF_TRAINING_ARGUMENTS: readonly string[] = [
  ...SAME_NAME,
  "optim",
  "lr_scheduler_type",
  "save_strategy",
  "evaluation_strategy",
  "eval_strategy",
  "do_eval",
  "do_train",
  "metric_for_best_model",
  "load_best_model_at_end",
  "fp16",
  "bf16",
  "tf32",
  "report_to",
  "logging_first_step",
  "remove_unused_columns",
  "eval_accumulation_steps",
  "gradient_checkpointing_kwargs",
  "dataset_kwargs",
  "overwrite_output_dir",
  "dataloader_num_workers",
  "ddp_find_unused_parameters",
  "deepspeed",
  "fsdp",
  "cache_dir",
];

/**
 * Maps one `TrainingArguments` argument; returns false when `name` is not
 * one (the caller then refuses it as unknown).
 */
export function mapTrainingArgument(t: Translation, name: string, entry: UpstreamValue): boolean {
  const { where } = entry;
  if ((SAME_NAME as readonly string[]).includes(name)) {
    let value = entry.value;
    // HF reads a string flag as-is; a YAML scalar like `output_dir: 123` is still a path.
    if ((name === "output_dir" || name === "run_name") && typeof value === "number") {
      value = String(value);
    }
    t.set(`training.${name}`, value, where);
    return true;
  }
  switch (name) {
    case "optim": {
      const optim = stringOf(t, entry);
      if (optim === undefined) return true;
      if (!ADAMW.includes(optim)) {
        t.refuse(where, `optim "${optim}" is not supported: irforge trains with AdamW only`);
      } else if (optim !== "adamw_torch" && optim !== "adamw_hf") {
        t.note(
          where,
          `"${optim}": irforge runs AdamW with f32 moments (same update, full-precision state)`,
        );
      }
      return true;
    }
    case "lr_scheduler_type": {
      const value = stringOf(t, entry);
      if (value === undefined) return true;
      if ((SCHEDULER_TYPES as readonly string[]).includes(value)) {
        t.set("training.lr_scheduler_type", value, where);
      } else {
        t.refuse(
          where,
          `lr_scheduler_type "${value}" is not supported: irforge has ${
            SCHEDULER_TYPES.join(", ")
          }`,
        );
      }
      return true;
    }
    case "save_strategy":
      t.set("training.save_strategy", entry.value, where);
      return true;
    case "evaluation_strategy":
    case "eval_strategy":
      t.set("training.eval_strategy", entry.value, where);
      return true;
    case "do_eval": {
      const on = boolOf(t, entry);
      if (on === false) t.set("training.eval_strategy", "no", where);
      else if (on) t.note(where, "evaluation runs when eval_strategy is steps or epoch");
      return true;
    }
    case "do_train": {
      const on = boolOf(t, entry);
      if (on === false) t.refuse(where, "do_train false: irforge's train command always trains");
      return true;
    }
    case "metric_for_best_model": {
      const metric = stringOf(t, entry);
      if (metric === undefined) return true;
      // HF prefixes eval metrics with eval_; irforge logs them as eval/<name>.
      const name = metric.startsWith("eval_") ? `eval/${metric.slice(5)}` : metric;
      t.set("training.metric_for_best_model", name, where);
      return true;
    }
    case "load_best_model_at_end": {
      const on = boolOf(t, entry);
      if (on) {
        t.refuse(
          where,
          "load_best_model_at_end is not supported: irforge keeps the best checkpoint " +
            "(metric_for_best_model) but ends with the last weights; set it to false",
        );
      }
      return true;
    }
    case "fp16":
    case "bf16":
    case "tf32": {
      const on = boolOf(t, entry);
      if (on) {
        t.note(
          where,
          `${name} mixed precision: irforge computes in f32 (WebGPU has no bf16/tf32); ` +
            "use model.dtype or bnb_4bit_compute_dtype for reduced-precision weights",
        );
      }
      return true;
    }
    case "report_to": {
      t.note(
        where,
        `${JSON.stringify(entry.value)}: metrics go to <run>/metrics.jsonl and the dashboard ` +
          "(deno task dashboard); no external tracker",
      );
      return true;
    }
    case "logging_first_step":
    case "remove_unused_columns":
    case "gradient_checkpointing_kwargs":
    case "dataset_kwargs":
    case "eval_accumulation_steps":
    case "dataloader_num_workers":
    case "ddp_find_unused_parameters":
    case "overwrite_output_dir":
    case "cache_dir":
      t.note(where, "a PyTorch/HF Trainer detail with no irforge counterpart; nothing to set");
      return true;
    case "deepspeed":
    case "fsdp": {
      const off = entry.value === null || entry.value === "" || entry.value === false;
      if (!off) {
        t.refuse(where, `${name} is not supported: irforge trains on one WebGPU device`);
      }
      return true;
    }
  }
  return false;
}

/** Checks an integer-valued upstream argument (HF's `int` fields). */
export function intOf(t: Translation, entry: UpstreamValue): number | undefined {
  const n = numberOf(t, entry);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n)) {
    t.refuse(entry.where, `expected an integer, got ${n}`);
    return undefined;
  }
  return n;
}
