/**
 * Hugging Face `config.json` for the decoder-only models irforge trains
 * (`model_type` `mistral` and `llama`): parsing with strict checks, and
 * writing a `config.json` that `transformers` loads.
 *
 * Honoured keys: `model_type`, `hidden_size`, `intermediate_size`,
 * `num_hidden_layers`, `num_attention_heads`, `num_key_value_heads`,
 * `head_dim`, `rope_theta`, `rope_parameters`, `rope_scaling`,
 * `rms_norm_eps`, `sliding_window`, `tie_word_embeddings`, `vocab_size`,
 * `max_position_embeddings`, `bos_token_id`, `eos_token_id`,
 * `pad_token_id`, `hidden_act`, `attention_bias`, `mlp_bias`,
 * `attention_dropout`, `torch_dtype` / `dtype`. Everything else
 * (`architectures`, `initializer_range`, `use_cache`,
 * `transformers_version`, `pretraining_tp`, …) is ignored because it does not
 * change the function the model computes.
 *
 * @module
 */

import { join } from "node:path";

/** Architectures this package implements. */
export type ModelType = "mistral" | "llama";

/** A decoder-only transformer's shape and constants, in irforge's names. */
export interface ModelConfig {
  /** `mistral` or `llama` (they differ only in defaults and sliding window). */
  modelType: ModelType;
  /** Width of the residual stream (`hidden_size`). */
  hiddenSize: number;
  /** Width of the SwiGLU feed-forward layer (`intermediate_size`). */
  intermediateSize: number;
  /** Number of transformer blocks (`num_hidden_layers`). */
  numLayers: number;
  /** Number of query heads (`num_attention_heads`). */
  numHeads: number;
  /** Number of key/value heads, for grouped-query attention (`num_key_value_heads`). */
  numKvHeads: number;
  /** Width of one attention head (`head_dim`, default `hiddenSize / numHeads`). */
  headDim: number;
  /** RoPE base frequency (`rope_theta` or `rope_parameters.rope_theta`). */
  ropeTheta: number;
  /** Epsilon of every RMSNorm (`rms_norm_eps`). */
  rmsNormEps: number;
  /** Attention window in tokens, or `null` for full causal attention. */
  slidingWindow: number | null;
  /** Whether the LM head reuses the token embedding matrix. */
  tieWordEmbeddings: boolean;
  /** Number of rows of the embedding matrix (`vocab_size`). */
  vocabSize: number;
  /** Longest sequence the model was trained for (`max_position_embeddings`). */
  maxPositionEmbeddings: number;
  /** Beginning-of-sequence id, or `null`. */
  bosTokenId: number | null;
  /** End-of-sequence ids (HF allows one id or a list); may be empty. */
  eosTokenIds: number[];
  /** Padding id, or `null` when the model defines none. */
  padTokenId: number | null;
  /** Stored parameter dtype as the checkpoint states it (informational), or `null`. */
  dtype: string | null;
}

/** A bad `config.json`: the message reads `file (field "x"): problem`. */
export class ConfigError extends Error {
  /** Creates an error naming the file and (optionally) the field. */
  constructor(readonly file: string, readonly field: string | undefined, problem: string) {
    super(`${file}${field === undefined ? "" : ` (field "${field}")`}: ${problem}`);
    this.name = "ConfigError";
  }
}

// Defaults of transformers' MistralConfig / LlamaConfig for the optional keys.
const defaults = {
  mistral: { maxPositionEmbeddings: 4096 * 32, slidingWindow: 4096 as number | null },
  llama: { maxPositionEmbeddings: 2048, slidingWindow: null as number | null },
} as const;

const architectureNames: Record<ModelType, string> = {
  mistral: "MistralForCausalLM",
  llama: "LlamaForCausalLM",
};

/**
 * Parses an already-decoded `config.json` object. `file` is used in error
 * messages only. Throws {@link ConfigError} for another architecture, a
 * missing required key, a wrong type or an unsupported value.
 */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(file, undefined, "expected a JSON object");
  }
  const raw = json as Record<string, unknown>;
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(file, field, problem);
  };

  const modelType = raw["model_type"];
  if (modelType !== "mistral" && modelType !== "llama") {
    fail(
      "model_type",
      `unsupported architecture ${JSON.stringify(modelType)}; expected "mistral" or "llama"`,
    );
  }
  const type = modelType as ModelType;

  const integer = (field: string, fallback?: number, min = 1): number => {
    const value = raw[field];
    if (value === undefined || value === null) {
      if (fallback === undefined) return fail(field, "is required");
      return fallback;
    }
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      return fail(field, `expected an integer >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const positive = (field: string, value: unknown, fallback: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      return fail(field, `expected a positive number, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const optionalId = (field: string, fallback: number | null): number | null => {
    const value = raw[field];
    if (value === undefined) return fallback;
    if (value === null) return null;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      return fail(
        field,
        `expected a token id (integer >= 0) or null, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const mustBeFalse = (field: string) => {
    const value = raw[field];
    if (value !== undefined && value !== null && value !== false) {
      fail(
        field,
        `only false is supported (biases are not implemented), got ${JSON.stringify(value)}`,
      );
    }
  };

  const hiddenSize = integer("hidden_size");
  const intermediateSize = integer("intermediate_size");
  const numLayers = integer("num_hidden_layers");
  const numHeads = integer("num_attention_heads");
  const numKvHeads = integer("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(
      "num_key_value_heads",
      `${numKvHeads} does not divide num_attention_heads (${numHeads})`,
    );
  }
  let headDim: number;
  if (raw["head_dim"] === undefined || raw["head_dim"] === null) {
    if (hiddenSize % numHeads !== 0) {
      fail(
        "head_dim",
        `absent, and hidden_size ${hiddenSize} is not divisible by ${numHeads} heads`,
      );
    }
    headDim = hiddenSize / numHeads;
  } else {
    headDim = integer("head_dim");
  }
  if (headDim % 2 !== 0) fail("head_dim", `RoPE needs an even head_dim, got ${headDim}`);
  const vocabSize = integer("vocab_size");

  const ropeTheta = parseRope(raw, fail);

  const rmsNormEps = positive("rms_norm_eps", raw["rms_norm_eps"], 1e-6);

  let slidingWindow: number | null = defaults[type].slidingWindow;
  if ("sliding_window" in raw) {
    const value = raw["sliding_window"];
    if (value === null) slidingWindow = null;
    else if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      fail("sliding_window", `expected a positive integer or null, got ${JSON.stringify(value)}`);
    } else if (type === "llama") {
      fail("sliding_window", "Llama has no sliding-window attention; remove the key or set null");
    } else {
      slidingWindow = value;
    }
  }
  // Mistral configs say `use_sliding_window: false` in some exports (Qwen-style); honour it.
  if (raw["use_sliding_window"] === false) slidingWindow = null;

  const tie = raw["tie_word_embeddings"];
  if (tie !== undefined && typeof tie !== "boolean") {
    fail("tie_word_embeddings", `expected true or false, got ${JSON.stringify(tie)}`);
  }

  const maxPositionEmbeddings = integer(
    "max_position_embeddings",
    defaults[type].maxPositionEmbeddings,
  );
  const bosTokenId = optionalId("bos_token_id", 1);
  const padTokenId = optionalId("pad_token_id", null);

  let eosTokenIds: number[];
  const eos = raw["eos_token_id"];
  if (eos === undefined) eosTokenIds = [2];
  else if (eos === null) eosTokenIds = [];
  else if (typeof eos === "number" && Number.isInteger(eos) && eos >= 0) eosTokenIds = [eos];
  else if (
    Array.isArray(eos) &&
    eos.every((id) => typeof id === "number" && Number.isInteger(id) && id >= 0)
  ) {
    eosTokenIds = eos as number[];
  } else {
    return fail("eos_token_id", `expected a token id or a list of ids, got ${JSON.stringify(eos)}`);
  }

  const act = raw["hidden_act"];
  if (act !== undefined && act !== "silu") {
    fail("hidden_act", `only "silu" (SwiGLU) is supported, got ${JSON.stringify(act)}`);
  }
  mustBeFalse("attention_bias");
  mustBeFalse("mlp_bias");
  const dropout = raw["attention_dropout"];
  if (dropout !== undefined && dropout !== null && dropout !== 0) {
    fail("attention_dropout", `only 0 is supported, got ${JSON.stringify(dropout)}`);
  }

  const dtypeValue = raw["dtype"] ?? raw["torch_dtype"];
  const dtype = typeof dtypeValue === "string" ? dtypeValue : null;

  return {
    modelType: type,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    ropeTheta,
    rmsNormEps,
    slidingWindow,
    tieWordEmbeddings: tie === true,
    vocabSize,
    maxPositionEmbeddings,
    bosTokenId,
    eosTokenIds,
    padTokenId,
    dtype,
  };
}

/** Reads the RoPE base from either the v5 `rope_parameters` or the v4 `rope_theta`/`rope_scaling` form. */
function parseRope(
  raw: Record<string, unknown>,
  fail: (field: string, problem: string) => never,
): number {
  let theta: unknown = raw["rope_theta"];
  let thetaField = "rope_theta";
  for (const key of ["rope_parameters", "rope_scaling"]) {
    const params = raw[key];
    if (params === undefined || params === null) continue;
    if (typeof params !== "object" || Array.isArray(params)) {
      fail(key, `expected an object or null, got ${JSON.stringify(params)}`);
    }
    const p = params as Record<string, unknown>;
    const ropeType = p["rope_type"] ?? p["type"];
    if (ropeType !== undefined && ropeType !== "default") {
      fail(
        `${key}.rope_type`,
        `RoPE scaling ${JSON.stringify(ropeType)} is not supported; only "default" (plain RoPE)`,
      );
    }
    if (p["rope_theta"] !== undefined) {
      theta = p["rope_theta"];
      thetaField = `${key}.rope_theta`;
    }
  }
  if (theta === undefined || theta === null) return 10000;
  if (typeof theta !== "number" || !Number.isFinite(theta) || theta <= 0) {
    return fail(thetaField, `expected a positive number, got ${JSON.stringify(theta)}`);
  }
  return theta;
}

/** Reads and parses `<dir>/config.json` (or the file itself when `path` ends in `.json`). */
export async function loadModelConfig(path: string): Promise<ModelConfig> {
  const file = path.endsWith(".json") ? path : join(path, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ConfigError(file, undefined, `cannot read: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, undefined, `invalid JSON: ${(error as Error).message}`);
  }
  return parseModelConfig(json, file);
}

/**
 * The `config.json` object `transformers` needs to rebuild this model
 * (`architectures`, `model_type` and every honoured key). RoPE is written in
 * both the v4 (`rope_theta`) and v5 (`rope_parameters`) forms.
 */
export function configToJson(config: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [architectureNames[config.modelType]],
    model_type: config.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: "silu",
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_parameters: { rope_type: "default", rope_theta: config.ropeTheta },
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    pad_token_id: config.padTokenId,
    attention_bias: false,
    attention_dropout: 0.0,
  };
  if (config.modelType === "mistral") json["sliding_window"] = config.slidingWindow;
  else json["mlp_bias"] = false;
  if (config.dtype !== null) json["dtype"] = config.dtype;
  return json;
}

/** Writes `configToJson(config)` as pretty JSON to `<dir>/config.json`. */
export async function saveModelConfig(dir: string, config: ModelConfig): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify(configToJson(config), null, 2) + "\n",
  );
}
