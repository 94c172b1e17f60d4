/**
 * The configuration schema: every key of every section with its type, default,
 * range and one line of documentation. Key names follow what users already
 * know from HF `TrainingArguments`, peft, BlockRank, Trove, RankLLM and
 * qa-expert. Validation, defaults, the resolved `config.yaml` and the README
 * reference table are all generated from these tables.
 *
 * @module
 */

import {
  bool,
  int,
  intList,
  type KeySpec,
  modules,
  number,
  oneOf,
  optionalBool,
  optionalInt,
  optionalNumber,
  optionalOneOf,
  optionalString,
  options,
} from "./key_spec.ts";

/** The training recipes the trainer knows. */
export const RECIPES = [
  "blockrank",
  "biencoder",
  "listwise",
  "crossencoder",
  "distill",
  "sft",
] as const;

/** A training recipe. */
export type Recipe = typeof RECIPES[number];

/** Learning-rate schedules (HF `lr_scheduler_type`). */
export const SCHEDULER_TYPES = ["linear", "cosine", "constant", "constant_with_warmup"] as const;

/** A learning-rate schedule name. */
export type SchedulerType = typeof SCHEDULER_TYPES[number];

/** Loss functions a config may name; `null` means the recipe's own default. */
export const LOSSES = [
  "cross_entropy",
  "infonce",
  "listnet",
  "ranknet",
  "lambdarank",
  "margin_mse",
  "kl_div",
  "binary_cross_entropy",
  "mse",
] as const;

/** The `model` section. */
export const modelKeys = {
  model_name_or_path: optionalString({
    default: null,
    doc: "HF model directory (config.json + safetensors + tokenizer) to start from; required",
  }),
  use_blockrank: bool({
    default: false,
    doc: "BlockRank structured attention: documents attend only to themselves and the prompt",
  }),
  attn_implementation: oneOf(["eager", "sdpa", "blockrank"], {
    default: "sdpa",
    doc: "attention kernel; `blockrank` is the block-sparse kernel for use_blockrank",
  }),
  use_lora: bool({ default: true, doc: "train LoRA adapters instead of all weights (peft)" }),
  lora_r: int({ default: 16, min: 1, doc: "LoRA rank r" }),
  lora_alpha: number({ default: 32, min: 0, minExclusive: true, doc: "LoRA scaling numerator" }),
  lora_dropout: number({
    default: 0.05,
    min: 0,
    max: 1,
    maxExclusive: true,
    doc: "dropout on the LoRA input",
  }),
  lora_target_modules: modules({
    default: ["q_proj", "k_proj", "v_proj", "o_proj"],
    doc: "linear layers that get adapters (peft names), or `all-linear`",
  }),
  use_rslora: bool({
    default: false,
    doc: "rank-stabilised LoRA: scale alpha/sqrt(r), not alpha/r",
  }),
  load_in_4bit: bool({ default: false, doc: "QLoRA: keep the frozen base weights in 4-bit NF4" }),
  bnb_4bit_use_double_quant: bool({
    default: false,
    doc: "also quantise the NF4 block scales (bitsandbytes double quantisation)",
  }),
  bnb_4bit_compute_dtype: oneOf(["float16", "bfloat16", "float32"], {
    default: "float32",
    doc: "what the NF4 matmul rounds the dequantised weights and activations to (f32 accumulation)",
  }),
  bnb_4bit_quant_type: oneOf(["nf4"], { default: "nf4", doc: "4-bit code book (only nf4)" }),
  pooling: oneOf(["mean", "last", "cls"], {
    default: "last",
    doc: "how a bi-/cross-encoder turns hidden states into one vector",
  }),
  normalize: bool({ default: true, doc: "L2-normalise embeddings before scoring" }),
  dtype: oneOf(["auto", "float32", "float16", "bfloat16"], {
    default: "auto",
    aliases: ["torch_dtype"],
    doc:
      "GPU storage of the weights: auto/float32 → f32; float16 → f16 frozen base (needs use_lora); bfloat16 is refused (no WebGPU type); also accepted as torch_dtype",
  }),
  projection_dim: optionalInt({
    default: null,
    min: 1,
    doc: "linear projection of embeddings to this size (null: no projection)",
  }),
  matryoshka_dims: intList({
    default: [],
    min: 1,
    doc: "also train truncated embeddings of these sizes (Matryoshka); empty: off",
  }),
  teacher_model_name_or_path: optionalString({
    default: null,
    doc: "teacher model for distillation (distill recipe)",
  }),
  precomputed_embeddings_dir: optionalString({
    default: null,
    doc:
      "distill: teacher embeddings read instead of running a teacher: distill-for-retrieval's cache <dir>/<dataset>_fp16|fp32/ (metadata.json, queries.mmap, corpus.mmap)",
  }),
  projection_hidden_dim: optionalInt({
    default: null,
    min: 1,
    doc:
      "distill: the projection gets a hidden layer of this width, Linear → LayerNorm → GELU → Linear → LayerNorm (distill-for-retrieval's ProjectionLayer); null: one linear map",
  }),
  teacher_prefix_dim: optionalInt({
    default: null,
    min: 1,
    doc:
      "distill: regress onto the first N values of the teacher's normalised embedding (an MRL teacher; distill-for-retrieval's use_projection: false); null: all of it",
  }),
  teacher_dim: optionalInt({
    default: null,
    min: 1,
    doc: "distill: the teacher's embedding width, checked when it loads (null: not checked)",
  }),
  student_dim: optionalInt({
    default: null,
    min: 1,
    doc: "distill: the student's hidden size, checked when it loads (null: not checked)",
  }),
} as const satisfies Record<string, KeySpec<unknown>>;

/** The `data` section. */
export const dataKeys = {
  data_path: optionalString({
    default: null,
    doc: "training examples (JSONL in the recipe's format)",
  }),
  qrels_path: optionalString({ default: null, doc: "TREC qrels of the training queries" }),
  corpus_path: optionalString({ default: null, doc: "corpus JSONL (`_id`, `title`, `text`)" }),
  queries_path: optionalString({ default: null, doc: "queries JSONL or TSV (`_id`, `text`)" }),
  run_path: optionalString({
    default: null,
    aliases: ["negatives_path"],
    doc: "TREC run with candidates / hard negatives; also accepted as negatives_path",
  }),
  mined_negatives_path: optionalString({
    default: null,
    doc: "qrel-style TSV of hard negatives from deno task mine (negative_source: mined)",
  }),
  eval_data_path: optionalString({ default: null, doc: "evaluation examples or queries" }),
  eval_qrels_path: optionalString({ default: null, doc: "TREC qrels for evaluation" }),
  eval_relevance_level: int({
    default: 1,
    min: 0,
    // MAP, recall, MRR and P count grades ≥ this as relevant; nDCG uses the grades themselves.
    doc:
      "trec_eval -l / pytrec_eval relevance_level of evaluation: least grade counted relevant (TREC DL: 2)",
  }),
  num_documents: int({ default: 30, min: 1, doc: "documents per prompt (BlockRank list size)" }),
  max_block_length: int({ default: 160, min: 1, doc: "tokens per document block (BlockRank)" }),
  max_seq_length: int({ default: 4096, min: 1, doc: "longest training sequence in tokens" }),
  pad_to_multiple_of: optionalInt({
    default: null,
    min: 1,
    doc: "pad sequence lengths up to a multiple of this (null: no rounding)",
  }),
  train_test_split: number({
    default: 0,
    min: 0,
    max: 1,
    maxExclusive: true,
    doc: "fraction of training examples held out for evaluation",
  }),
  dataset_seed: int({ default: 42, min: 0, doc: "seed of the split and of data shuffling" }),
  max_eval_samples: optionalInt({
    default: null,
    min: 1,
    doc:
      "evaluate on at most this many held-out examples or queries, the first in order (null: all)",
  }),
  group_size: int({
    default: 8,
    min: 1,
    doc: "passages per query: 1 positive + group_size-1 negatives (Trove/Tevatron)",
  }),
  query_max_len: int({ default: 32, min: 1, doc: "query truncation length in tokens" }),
  passage_max_len: int({ default: 128, min: 1, doc: "passage truncation length in tokens" }),
  packing: bool({ default: false, doc: "pack several short examples into one sequence (SFT)" }),
  window_size: int({ default: 20, min: 2, doc: "passages per listwise prompt (RankLLM)" }),
  stride: int({ default: 10, min: 1, doc: "sliding-window step for listwise ranking (RankLLM)" }),
  passage_selection_strategy: oneOf(["random", "most_relevant", "least_relevant"], {
    default: "random",
    doc: "which passages to keep when a query has more than needed (Trove)",
  }),
  negative_source: oneOf(["random", "run", "qrels", "in_batch", "mined"], {
    default: "random",
    doc: "negatives: random corpus docs, the run file, low qrels grades, in-batch only, or " +
      "mined_negatives_path",
  }),
  query_instruction: optionalString({
    default: null,
    doc: "distill: text put before every query (instruction-tuned retrievers); null: none",
  }),
  min_score: optionalNumber({
    default: null,
    doc: "keep only candidates scoring at least this (qrels grade or run score)",
  }),
  max_score: optionalNumber({
    default: null,
    doc: "keep only candidates scoring at most this (qrels grade or run score)",
  }),
} as const satisfies Record<string, KeySpec<unknown>>;

/** The `training` section (and the `phase1`/`phase2` overrides of distillation). */
export const trainingKeys = {
  output_dir: optionalString({
    default: null,
    phase: false,
    doc: "run directory (null: runs/<name>); a -2, -3 suffix is added if it exists",
  }),
  run_name: optionalString({
    default: null,
    phase: false,
    doc: "run name for run.json and the dashboard (null: the top-level name)",
  }),
  num_train_epochs: number({ default: 3, min: 0, doc: "passes over the training data" }),
  max_steps: int({
    default: -1,
    min: -1,
    doc: "optimizer steps to run; overrides num_train_epochs when > 0",
  }),
  per_device_train_batch_size: int({ default: 8, min: 1, doc: "examples per micro-batch" }),
  per_device_eval_batch_size: int({ default: 8, min: 1, doc: "examples per evaluation batch" }),
  gradient_accumulation_steps: int({ default: 1, min: 1, doc: "micro-batches per optimizer step" }),
  learning_rate: number({ default: 5e-5, min: 0, minExclusive: true, doc: "peak AdamW lr" }),
  lr_scheduler_type: oneOf(SCHEDULER_TYPES, {
    default: "linear",
    doc: "learning-rate schedule (HF get_scheduler)",
  }),
  warmup_ratio: number({
    default: 0,
    min: 0,
    max: 1,
    doc: "warm-up as a fraction of total steps (ceil(total*ratio)); exclusive with warmup_steps",
  }),
  warmup_steps: int({ default: 0, min: 0, doc: "linear warm-up steps from lr 0" }),
  weight_decay: number({ default: 0, min: 0, doc: "AdamW decoupled weight decay" }),
  adam_beta1: number({ default: 0.9, min: 0, max: 1, maxExclusive: true, doc: "AdamW beta1" }),
  adam_beta2: number({ default: 0.999, min: 0, max: 1, maxExclusive: true, doc: "AdamW beta2" }),
  adam_epsilon: number({ default: 1e-8, min: 0, minExclusive: true, doc: "AdamW epsilon" }),
  max_grad_norm: number({ default: 1, min: 0, doc: "clip the global gradient norm (0: off)" }),
  save_strategy: oneOf(["steps", "epoch", "no"], {
    default: "steps",
    doc: "when to write checkpoints",
  }),
  save_steps: int({ default: 500, min: 1, doc: "checkpoint every this many steps" }),
  save_total_limit: optionalInt({
    default: null,
    min: 1,
    doc: "keep at most this many checkpoints (the best one is kept too); null: all",
  }),
  logging_steps: int({ default: 10, min: 1, doc: "write metrics every this many steps" }),
  eval_strategy: oneOf(["no", "steps", "epoch"], {
    default: "no",
    aliases: ["evaluation_strategy"],
    doc: "when to evaluate; also accepted as evaluation_strategy",
  }),
  eval_steps: optionalInt({
    default: null,
    min: 1,
    doc: "evaluate every this many steps (null: logging_steps)",
  }),
  use_aux_loss: bool({
    default: false,
    doc: "BlockRank auxiliary attention loss (query-to-document attention contrastive)",
  }),
  aux_layer_idx: optionalInt({
    default: null,
    min: 0,
    doc: "layer whose attention the auxiliary loss reads (null: the middle layer)",
  }),
  aux_loss_weight: number({ default: 0.1, min: 0, doc: "weight of the auxiliary loss" }),
  blockrank_eval: oneOf(["attention", "decode", "both"], {
    default: "attention",
    doc:
      "BlockRank evaluation: rank by attention, by the greedily decoded answer id, or both (decode_* metrics)",
  }),
  generation_max_length: int({
    default: 10,
    min: 1,
    doc: "most tokens generated per query by decoding evaluation (BlockRank's eval_decode)",
  }),
  aux_temperature: number({
    default: 0.05,
    min: 0,
    minExclusive: true,
    doc: "softmax temperature of the auxiliary loss",
  }),
  loss: optionalOneOf(LOSSES, { default: null, doc: "loss function (null: the recipe's default)" }),
  loss_options: options({ default: {}, doc: "extra loss parameters, passed to the loss as is" }),
  temperature: number({
    default: 1,
    min: 0,
    minExclusive: true,
    doc: "softmax temperature of contrastive / distillation scores",
  }),
  objective: oneOf(["generation", "ranking", "combined"], {
    default: "generation",
    doc: "what is trained: next-token generation, ranking scores, or both (qa-expert)",
  }),
  noisy_embedding_alpha: optionalNumber({
    default: null,
    min: 0,
    minExclusive: true,
    doc: "NEFTune noise on input embeddings (null: off)",
  }),
  gradient_checkpointing: bool({
    default: false,
    doc: "recompute activations in backward to save memory",
  }),
  fp16: bool({
    default: false,
    doc: "mixed precision: f16 matmul operands, f32 master weights, dynamic loss scaling",
  }),
  bf16: bool({ default: false, doc: "refused: WebGPU has no bf16 arithmetic (use fp16)" }),
  profile_steps: optionalInt({
    default: null,
    min: 1,
    doc: "profile GPU time per op over this optimizer step once (profile.json in the run)",
  }),
  seed: int({ default: 42, min: 0, doc: "seed of initialisation, dropout and sampling" }),
  ddp_timeout: int({
    default: 1800,
    min: 1,
    phase: false,
    doc: "seconds a rank waits in a collective before aborting the data-parallel job",
  }),
  max_length: optionalInt({
    default: null,
    min: 1,
    doc:
      "distill: token limit of queries and passages in this phase (null: data.query_max_len / passage_max_len)",
  }),
  max_samples: optionalInt({
    default: null,
    min: 1,
    doc:
      "distill: train on the first N texts (phase 1: training queries, then passages) or queries (phase 2); null: all",
  }),
  num_negatives: optionalInt({
    default: null,
    min: 1,
    doc:
      "distill phase 2: hard negatives per query, InfoNCE within the query's own group (null: one, with in-batch negatives)",
  }),
  artifacts_dir: optionalString({
    default: null,
    phase: false,
    doc:
      "after training, copy the final weights and config.yaml here (distill-for-retrieval's save_to_artifacts); null: no copy",
  }),
  skip_phase1: bool({ default: false, phase: false, doc: "distill: skip phase 1" }),
  skip_phase2: bool({ default: false, phase: false, doc: "distill: skip phase 2" }),
  resume_from_checkpoint: optionalString({
    default: null,
    phase: false,
    doc: "checkpoint or run directory to resume from (`latest`: newest in output_dir)",
  }),
  metric_for_best_model: optionalString({
    default: null,
    doc: "metric that picks the best checkpoint, e.g. eval/ndcg@10",
  }),
  greater_is_better: optionalBool({
    default: null,
    doc: "whether a larger metric_for_best_model is better (null: unless it ends in loss)",
  }),
} as const satisfies Record<string, KeySpec<unknown>>;

/** Value type of a table of key specs. */
export type SectionValues<S extends Record<string, KeySpec<unknown>>> = {
  -readonly [K in keyof S]: S[K] extends KeySpec<infer T> ? T : never;
};

/** The resolved `model` section. */
export type ModelConfig = SectionValues<typeof modelKeys>;
/** The resolved `data` section. */
export type DataConfig = SectionValues<typeof dataKeys>;
/** The resolved `training` section. */
export type TrainingConfig = SectionValues<typeof trainingKeys>;

/** A fully resolved configuration: every key present, defaults filled in. */
export interface Config {
  /** Which recipe trains the model. */
  recipe: Recipe;
  /** Name of the run (null: the recipe name). */
  name: string | null;
  /** Model and adapter settings. */
  model: ModelConfig;
  /** Data settings. */
  data: DataConfig;
  /** Optimisation, checkpointing and logging settings. */
  training: TrainingConfig;
  /** Distill phase 1: `training` with the phase's overrides (null for other recipes). */
  phase1: TrainingConfig | null;
  /** Distill phase 2: `training` with the phase's overrides (null for other recipes). */
  phase2: TrainingConfig | null;
}

/** The section tables by name, in the order they are written. */
export const SECTIONS = {
  model: modelKeys,
  data: dataKeys,
  training: trainingKeys,
} as const;

/** A section name. */
export type SectionName = keyof typeof SECTIONS;

/** Top-level keys that are not sections. */
export const TOP_LEVEL_KEYS = ["recipe", "name"] as const;

/** Sections that override `training` for one distillation phase. */
export const PHASE_SECTIONS = ["phase1", "phase2"] as const;
