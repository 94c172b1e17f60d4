/**
 * HF-style command lines of the projects whose training is driven by flags:
 *
 * - `qa-expert`: khaimt/qa_expert `train/train_model.py` (`HfArgumentParser`
 *   over its `ModelArguments`, `DataArguments` and HF `TrainingArguments`;
 *   booleans written `True`/`False`), run as the `sft` recipe on qa-expert's
 *   multi-hop QA training files;
 * - `rankllm`: castorini/rank_llm `training/train_rankllm.py` (argparse;
 *   `store_true` switches), whose training file is a JSON list of
 *   `{"conversations": [system, human, gpt]}` records: objective
 *   `generation` trains exactly that (LM loss on the permutation) with the
 *   `sft` recipe; `ranking` and `combined` train the `listwise` recipe on
 *   the same file (first-token ranking loss from the gpt turn's permutation,
 *   `recipes/rankllm_conversations.ts`), `--ranking_loss lambda|listnet|ranknet`
 *   and `--weighted` as upstream, with upstream's combined weights.
 *
 * `deno task train --recipe sft --model_name_or_path DIR --train_path t.json …`
 * (qa-expert) or `deno task train --train_dataset_path f.json --objective
 * generation …` (RankLLM; `--dialect` names either explicitly).
 *
 * @module
 */

import { InputError, type InputLocation } from "@irforge/data/input-error";
import { HF_TRAINING_ARGUMENTS, intOf, mapTrainingArgument } from "./hf_training_args.ts";
import { Translation, type UpstreamValue } from "./upstream_yaml.ts";

/** The flag dialects. */
export const FLAG_DIALECTS = ["qa-expert", "rankllm"] as const;

/** A command-line dialect. */
export type FlagDialect = typeof FLAG_DIALECTS[number];

/** Where problems with flags point. */
const COMMAND_LINE = "command line";

/** irforge's own options, which stay irforge's in a flag dialect. */
const IRFORGE_OPTIONS = new Set([
  "--set",
  "--resume",
  "--nproc",
  "--config",
  "--help",
  "-h",
  "--print-config",
  "--dialect",
  "--recipe",
]);

/** qa-expert's `ModelArguments` and `DataArguments`. */
const QA_EXPERT_FLAGS = [
  "model_name_or_path",
  "model_type",
  "use_lora",
  "model_max_length",
  "qlora",
  "train_path",
  "validation_path",
  "hf_data_path",
  "packing",
  "train_ratio",
  "validation_ratio",
];

/** train_rankllm.py's flags. */
const RANKLLM_FLAGS = [
  "model_name_or_path",
  "config_name",
  "tokenizer_name",
  "train_dataset_path",
  "cache_dir",
  "per_device_train_batch_size",
  "learning_rate",
  "weight_decay",
  "noisy_embedding_alpha",
  "num_train_epochs",
  "max_train_steps",
  "gradient_accumulation_steps",
  "ranking_loss",
  "weighted",
  "objective",
  "lr_scheduler_type",
  "num_warmup_steps",
  "output_dir",
  "seed",
  "model_type",
  "preprocessing_num_workers",
  "overwrite_cache",
  "trust_remote_code",
  "checkpointing_steps",
  "resume_from_checkpoint",
  "with_tracking",
  "gradient_checkpointing",
  "report_to",
  "low_cpu_mem_usage",
];

/** train_rankllm.py's switches (`action="store_true"`: no value). */
const RANKLLM_SWITCHES = new Set([
  "weighted",
  "overwrite_cache",
  "with_tracking",
  "gradient_checkpointing",
  "low_cpu_mem_usage",
]);

/** HF `TrainingArguments` booleans (a bare flag means True). */
const HF_BOOLEANS = new Set([
  "use_lora",
  "qlora",
  "packing",
  "bf16",
  "fp16",
  "tf32",
  "gradient_checkpointing",
  "do_eval",
  "do_train",
  "load_best_model_at_end",
  "logging_first_step",
  "remove_unused_columns",
  "overwrite_output_dir",
  "greater_is_better",
]);

/**
 * Splits a command line into irforge's own options and upstream flags; the
 * upstream part is null when no flag belongs to a flag dialect (a plain
 * irforge command line).
 */
export function splitUpstreamArgs(
  args: readonly string[],
): { irforge: string[]; upstream: string[] | null; recipe: string | null; dialect: string | null } {
  const irforge: string[] = [];
  const upstream: string[] = [];
  let recipe: string | null = null, dialect: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const takesValue = name !== "--help" && name !== "-h" && name !== "--print-config";
    if (IRFORGE_OPTIONS.has(name)) {
      const value = inline ?? (takesValue ? args[i + 1] : undefined);
      if (name === "--recipe") {
        recipe = value ?? null;
        if (inline === undefined) i++;
        continue;
      }
      if (name === "--dialect") dialect = value ?? null;
      irforge.push(arg);
      if (takesValue && inline === undefined && i + 1 < args.length) irforge.push(args[++i]!);
      continue;
    }
    upstream.push(arg);
  }
  const flagDialect = dialect !== null && (FLAG_DIALECTS as readonly string[]).includes(dialect);
  const hasUpstream = upstream.length > 0 || recipe !== null || flagDialect;
  if (flagDialect) {
    // --dialect qa-expert|rankllm is consumed here, not by the file loader.
    const at = irforge.indexOf("--dialect");
    if (at >= 0) irforge.splice(at, 2);
    else irforge.splice(irforge.findIndex((a) => a.startsWith("--dialect=")), 1);
  }
  return { irforge, upstream: hasUpstream ? upstream : null, recipe, dialect };
}

/** Parses `--name value`, `--name=value` and switches into upstream values. */
export function parseUpstreamFlags(
  args: readonly string[],
  switches: ReadonlySet<string>,
  booleans: ReadonlySet<string>,
): Map<string, UpstreamValue> {
  const out = new Map<string, UpstreamValue>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const where: InputLocation = { file: COMMAND_LINE, field: arg.split("=")[0] };
    if (!arg.startsWith("--")) {
      throw new InputError(where, `unexpected argument "${arg}": flags are written --name value`);
    }
    const eq = arg.indexOf("=");
    const name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replaceAll("-", "_");
    where.field = `--${name}`;
    let text: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (text === undefined && !switches.has(name)) {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        text = next;
        i++;
      } else if (!booleans.has(name)) {
        throw new InputError(where, `--${name} needs a value`);
      }
    }
    if (out.has(name)) throw new InputError(where, `--${name} is given twice`);
    out.set(name, {
      value: text === undefined ? true : flagValue(text, booleans.has(name)),
      where,
    });
  }
  return out;
}

/** A flag's text as HF reads it: True/False (any case, yes/no, 1/0) for booleans, numbers, else text. */
function flagValue(text: string, boolean: boolean): unknown {
  if (boolean) {
    const lower = text.toLowerCase();
    if (["true", "yes", "1", "t", "y"].includes(lower)) return true;
    if (["false", "no", "0", "f", "n"].includes(lower)) return false;
    return text;
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return Number(text);
  if (text === "None") return null;
  return text;
}

/**
 * Translates an upstream command line. `dialect` is named or inferred from
 * the flags (`--train_path` → qa-expert, `--train_dataset_path` → rankllm);
 * `recipe` is irforge's `--recipe`, which must agree.
 */
export function translateFlags(
  args: readonly string[],
  dialect: string | null,
  recipe: string | null,
): { translation: Translation; dialect: FlagDialect } {
  const names = args.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=")[0]!);
  let chosen: FlagDialect;
  if (dialect !== null) {
    if (!(FLAG_DIALECTS as readonly string[]).includes(dialect)) {
      throw new InputError(
        { file: "--dialect" },
        `unknown command-line dialect "${dialect}": expected ${FLAG_DIALECTS.join(" or ")}`,
      );
    }
    chosen = dialect as FlagDialect;
  } else if (names.includes("train_dataset_path")) chosen = "rankllm";
  else if (names.includes("train_path") || recipe === "sft") chosen = "qa-expert";
  else {
    throw new InputError(
      { file: COMMAND_LINE },
      "cannot tell whose command line this is: qa-expert's has --train_path, RankLLM's " +
        "--train_dataset_path (or name it with --dialect qa-expert|rankllm)",
    );
  }
  const translation = chosen === "qa-expert"
    ? translateQaExpert(parseUpstreamFlags(args, new Set(), HF_BOOLEANS))
    : translateRankLlm(parseUpstreamFlags(args, RANKLLM_SWITCHES, new Set(["trust_remote_code"])));
  const trains = translation.entries.find((e) => e.path === "recipe")?.value;
  if (recipe !== null && recipe !== trains) {
    throw new InputError(
      { file: "--recipe" },
      `--recipe ${recipe}: ${chosen}'s command line trains the ${trains} recipe ` +
        (chosen === "rankllm"
          ? "(RankLLM's generation objective: sft; ranking and combined: listwise)"
          : ""),
    );
  }
  return { translation, dialect: chosen };
}

const where0 = (field: string): InputLocation => ({ file: COMMAND_LINE, field });

function translateQaExpert(flags: Map<string, UpstreamValue>): Translation {
  const t = new Translation();
  t.entries.push({ path: "recipe", value: "sft", where: where0("dialect qa-expert") });
  t.mapping.push(`(dialect qa-expert) → recipe: "sft"`);
  const on = (name: string) => flags.get(name)?.value === true;
  const useLora = flags.has("use_lora") ? on("use_lora") : true; // ModelArguments default
  const computeDtype = on("bf16") ? "bfloat16" : on("fp16") ? "float16" : "float32";
  for (const [name, entry] of flags) {
    const { where } = entry;
    switch (name) {
      case "model_name_or_path":
        t.set("model.model_name_or_path", entry.value, where);
        break;
      case "model_type":
        if (entry.value !== "mistral" && entry.value !== "llama") {
          t.refuse(
            where,
            `--model_type ${JSON.stringify(entry.value)}: qa-expert supports mistral or llama`,
          );
        } else {
          t.note(where, "irforge reads the architecture from the model's config.json");
        }
        break;
      case "use_lora":
        t.set("model.use_lora", entry.value, where);
        break;
      case "qlora":
        if (entry.value === true) {
          // qa-expert's BitsAndBytesConfig: NF4, double quantisation, compute dtype from bf16/fp16.
          t.set("model.load_in_4bit", true, where);
          t.set("model.bnb_4bit_use_double_quant", true, where);
          t.set("model.bnb_4bit_compute_dtype", computeDtype, where);
        }
        break;
      case "model_max_length":
        t.set("data.max_seq_length", entry.value, where);
        break;
      case "train_path":
        t.set("data.data_path", entry.value, where);
        break;
      case "validation_path":
        if (entry.value !== "" && entry.value !== null) {
          t.set("data.eval_data_path", entry.value, where);
        }
        break;
      case "hf_data_path":
        t.note(where, "not read by train_model (it reads --train_path), nor by irforge");
        break;
      case "packing":
        t.set("data.packing", entry.value, where);
        break;
      case "train_ratio":
      case "validation_ratio":
        if (entry.value !== 1) {
          t.refuse(
            where,
            `--${name} ${
              JSON.stringify(entry.value)
            } is not supported: irforge uses the whole file`,
          );
        }
        break;
      default:
        if (!mapTrainingArgument(t, name, entry)) {
          t.unknown(where, [...QA_EXPERT_FLAGS, ...HF_TRAINING_ARGUMENTS], "qa-expert flag");
        }
    }
  }
  if (!flags.has("use_lora")) t.setDefault("model.use_lora", true, COMMAND_LINE, "use_lora True");
  if (useLora) {
    // qa-expert's create_peft_config: r 16, alpha 64, dropout 0.1 on every linear layer.
    t.setDefault("model.lora_r", 16, COMMAND_LINE, "LoRA r 16");
    t.setDefault("model.lora_alpha", 64, COMMAND_LINE, "lora_alpha 64");
    t.setDefault("model.lora_dropout", 0.1, COMMAND_LINE, "lora_dropout 0.1");
    t.setDefault("model.lora_target_modules", "all-linear", COMMAND_LINE, "every linear layer");
    t.notes.push(
      "use_lora: qa-expert also trains embed_tokens and lm_head in full (modules_to_save, for " +
        "its added tokens <|bof|> <|eof|> <|eot|>); irforge trains the adapters only and " +
        "writes those markers as text",
    );
  }
  if (!flags.has("model_max_length")) {
    t.setDefault("data.max_seq_length", 4096, COMMAND_LINE, "model_max_length 4096");
  }
  if (!flags.has("gradient_checkpointing")) {
    // train_model calls gradient_checkpointing_enable() unconditionally.
    t.setDefault(
      "training.gradient_checkpointing",
      true,
      COMMAND_LINE,
      "gradient checkpointing on",
    );
  }
  if (!flags.has("logging_steps")) {
    t.setDefault("training.logging_steps", 500, COMMAND_LINE, "logging_steps 500");
  }
  return t;
}

function translateRankLlm(flags: Map<string, UpstreamValue>): Translation {
  const t = new Translation();
  const objective = flags.get("objective")?.value ?? "generation";
  const ranks = objective === "ranking" || objective === "combined";
  const recipe = ranks ? "listwise" : "sft";
  t.entries.push({ path: "recipe", value: recipe, where: where0("dialect rankllm") });
  t.mapping.push(`(dialect rankllm) → recipe: "${recipe}" (objective ${objective})`);
  if (ranks) rankingObjective(t, flags, objective as "ranking" | "combined");
  for (const [name, entry] of flags) {
    const { where } = entry;
    switch (name) {
      case "model_name_or_path":
      case "per_device_train_batch_size":
      case "learning_rate":
      case "weight_decay":
      case "noisy_embedding_alpha":
      case "num_train_epochs":
      case "gradient_accumulation_steps":
      case "output_dir":
      case "seed":
      case "resume_from_checkpoint":
        t.set(
          name === "model_name_or_path" ? `model.${name}` : `training.${name}`,
          entry.value,
          where,
        );
        break;
      case "train_dataset_path":
        t.set("data.data_path", entry.value, where);
        break;
      case "max_train_steps":
        if (entry.value !== null) t.set("training.max_steps", entry.value, where);
        break;
      case "num_warmup_steps":
        t.set("training.warmup_steps", entry.value, where);
        break;
      case "gradient_checkpointing":
        t.set("training.gradient_checkpointing", true, where);
        break;
      case "lr_scheduler_type":
        mapTrainingArgument(t, name, entry);
        break;
      case "objective":
        if (!["generation", "ranking", "combined"].includes(entry.value as string)) {
          t.refuse(
            where,
            `--objective ${JSON.stringify(entry.value)}: expected generation, ranking or combined`,
          );
        }
        break;
      case "ranking_loss":
      case "weighted":
        if (!ranks) {
          t.note(
            where,
            "used by the ranking/combined objectives only (as upstream); generation ignores it",
          );
        }
        break;
      case "checkpointing_steps": {
        if (entry.value === "epoch") t.set("training.save_strategy", "epoch", where);
        else {
          const steps = intOf(t, entry);
          if (steps !== undefined) {
            t.set("training.save_strategy", "steps", where);
            t.set("training.save_steps", steps, where);
          }
        }
        break;
      }
      case "config_name":
      case "tokenizer_name":
        if (entry.value !== null && entry.value !== flags.get("model_name_or_path")?.value) {
          t.refuse(
            where,
            `--${name} is not supported: irforge loads config and tokenizer from --model_name_or_path`,
          );
        }
        break;
      case "model_type":
        t.refuse(
          where,
          "--model_type (training from scratch) is not supported: give --model_name_or_path",
        );
        break;
      case "trust_remote_code":
        t.note(where, "irforge runs no model code from checkpoints");
        break;
      case "cache_dir":
      case "preprocessing_num_workers":
      case "overwrite_cache":
      case "low_cpu_mem_usage":
        t.note(where, "a PyTorch/datasets detail with no irforge counterpart; nothing to set");
        break;
      case "with_tracking":
      case "report_to":
        t.note(where, "metrics go to <run>/metrics.jsonl and the dashboard; no external tracker");
        break;
      default:
        t.unknown(where, RANKLLM_FLAGS, "RankLLM flag");
    }
  }
  // train_rankllm.py's defaults where irforge's differ.
  const defaults: [string, string, unknown][] = [
    ["learning_rate", "training.learning_rate", 5e-6],
    ["checkpointing_steps", "training.save_strategy", "epoch"],
  ];
  for (const [flag, path, value] of defaults) {
    if (!flags.has(flag)) {
      t.setDefault(path, value, COMMAND_LINE, `${flag} ${JSON.stringify(value)}`);
    }
  }
  t.setDefault("model.use_lora", false, COMMAND_LINE, "full fine-tune");
  t.notes.push(
    "rankllm: the prompt is the conversation's system and user turns under the model's chat " +
      "template (irforge's Mistral template, system folded into the user turn); the target is " +
      "the gpt turn + EOS, as GenerationDataset builds it",
  );
  return t;
}

/** irforge's name and options of `--ranking_loss` (train_rankllm.py's default: lambda). */
const RANKING_LOSSES: Record<string, { loss: string; options: Record<string, unknown> }> = {
  // rank_llm's lambdarank reduces by the mean (allRank's default is the sum).
  lambda: { loss: "lambdarank", options: { reduction: "mean" } },
  listnet: { loss: "listnet", options: {} },
  ranknet: { loss: "ranknet", options: {} },
};

/**
 * `--objective ranking|combined` on the conversations file: the listwise
 * recipe's objective, its loss from `--ranking_loss`/`--weighted`, and for
 * combined upstream's weights (`loss += 0.1·listnet`, `10·ranknet` when
 * weighted, else `1·rank loss`).
 */
function rankingObjective(
  t: Translation,
  flags: Map<string, UpstreamValue>,
  objective: "ranking" | "combined",
): void {
  const objectiveEntry = flags.get("objective")!;
  t.set("training.objective", objective, objectiveEntry.where);
  const lossEntry = flags.get("ranking_loss");
  const name = (lossEntry?.value ?? "lambda") as string;
  const chosen = RANKING_LOSSES[name];
  const where = lossEntry?.where ?? where0("--ranking_loss (default lambda)");
  if (!chosen) {
    t.refuse(where, `--ranking_loss "${name}": expected lambda, listnet or ranknet`);
    return;
  }
  const weightedEntry = flags.get("weighted");
  const weighted = weightedEntry !== undefined;
  const options = { ...chosen.options };
  if (weighted && chosen.loss === "ranknet") options.weighted = true;
  else if (weighted) t.note(weightedEntry.where, `not used: --weighted applies to ranknet only`);
  t.set("training.loss", chosen.loss, where);
  t.notes.push(
    `rankllm: objective ${objective} scores the identifier tokens [A], [B], … at the position ` +
      "that predicts the gpt turn's first identifier with upstream's compute_ranking_loss: the " +
      "targets are the model's own identifier logits sorted and reassigned by the gpt turn's " +
      "permutation (gradient through both), one loss per record, mean over the batch",
  );
  if (objective === "ranking") {
    if (Object.keys(options).length > 0) t.set("training.loss_options", options, where);
    return;
  }
  const weight = chosen.loss === "listnet" ? 0.1 : chosen.loss === "ranknet" && weighted ? 10 : 1;
  t.set("training.loss_options", {
    ...(weight !== 1 ? { ranking_weight: weight } : {}),
    ...options,
  }, where);
}
