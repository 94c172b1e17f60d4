/**
 * LoRA configuration: the fields of peft's `LoraConfig` that this engine
 * honours, conversion from the trainer's snake_case keys, and reading/writing
 * `adapter_config.json` exactly as peft does.
 *
 * @module
 */

import { type Projection, projectionPath, PROJECTIONS } from "../causal_lm.ts";

/** What a LoRA adapter looks like (peft `LoraConfig`, camel-cased). */
export interface LoraConfig {
  /** Rank r of A `[r, in]` and B `[out, r]`. */
  r: number;
  /** Scaling numerator α. */
  loraAlpha: number;
  /** Dropout probability on the adapter input (training only). */
  loraDropout: number;
  /** Projections that get adapters (peft names, e.g. `q_proj`). */
  targetModules: Projection[];
  /** Rank-stabilised scaling α/√r instead of α/r. */
  useRslora: boolean;
  /** Only these layer indices get adapters; `null` for all. */
  layersToTransform: number[] | null;
  /** Recorded in `adapter_config.json` (`base_model_name_or_path`). */
  baseModelNameOrPath: string | null;
}

/** The adapter's output scale: α/r, or α/√r with rsLoRA (peft's `scaling`). */
export function loraScaling(config: Pick<LoraConfig, "r" | "loraAlpha" | "useRslora">): number {
  return config.useRslora ? config.loraAlpha / Math.sqrt(config.r) : config.loraAlpha / config.r;
}

/** A complete {@link LoraConfig} from a partial one (peft's defaults: r 8, α 8, all targets none). */
export function loraConfig(
  partial: Partial<LoraConfig> & { targetModules: Projection[] },
): LoraConfig {
  const config: LoraConfig = {
    r: 8,
    loraAlpha: 8,
    loraDropout: 0,
    useRslora: false,
    layersToTransform: null,
    baseModelNameOrPath: null,
    ...partial,
  };
  validateLoraConfig(config, "LoRA config");
  return config;
}

function validateLoraConfig(c: LoraConfig, where: string, needTargets = true): void {
  if (!Number.isInteger(c.r) || c.r < 1) {
    throw new Error(`${where}: r must be an integer ≥ 1, got ${c.r}`);
  }
  if (!(c.loraAlpha > 0)) throw new Error(`${where}: lora_alpha must be > 0, got ${c.loraAlpha}`);
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) {
    throw new Error(`${where}: lora_dropout must be in [0, 1), got ${c.loraDropout}`);
  }
  if (needTargets && c.targetModules.length === 0) {
    throw new Error(`${where}: target_modules is empty`);
  }
  for (const m of c.targetModules) {
    if (!PROJECTIONS.includes(m)) {
      throw new Error(`${where}: target module "${m}" is not one of ${PROJECTIONS.join(", ")}`);
    }
  }
  for (const l of c.layersToTransform ?? []) {
    if (!Number.isInteger(l) || l < 0) throw new Error(`${where}: bad layer index ${l}`);
  }
}

/** The trainer's LoRA keys (snake_case, as in `packages/trainer/config/schema.ts`). */
export interface TrainerLoraKeys {
  /** LoRA rank. */
  lora_r: number;
  /** Scaling numerator. */
  lora_alpha: number;
  /** Dropout on the adapter input. */
  lora_dropout: number;
  /** Projection names, or `"all-linear"` (also accepted inside a list). */
  lora_target_modules: string[] | string;
  /** Rank-stabilised scaling. */
  use_rslora?: boolean;
  /** Recorded as `base_model_name_or_path`. */
  model_name_or_path?: string | null;
}

/**
 * Converts the trainer's snake_case LoRA keys to a {@link LoraConfig}.
 * `all-linear` means the seven projections (lm_head excluded, as peft does).
 */
export function loraConfigFromTrainerConfig(keys: TrainerLoraKeys): LoraConfig {
  const targets = resolveTargetModules(keys.lora_target_modules, "lora_target_modules");
  return loraConfig({
    r: keys.lora_r,
    loraAlpha: keys.lora_alpha,
    loraDropout: keys.lora_dropout,
    targetModules: targets,
    useRslora: keys.use_rslora ?? false,
    baseModelNameOrPath: keys.model_name_or_path ?? null,
  });
}

/**
 * Turns peft's `target_modules` (a list of names, `all-linear`, or a regular
 * expression matched against the whole module path) into projection names.
 */
export function resolveTargetModules(value: unknown, where: string): Projection[] {
  if (value === "all-linear" || (Array.isArray(value) && value.includes("all-linear"))) {
    return [...PROJECTIONS];
  }
  if (typeof value === "string") {
    // peft reads a string as a regex over full module paths; which modules it
    // picked is then only known from the saved keys (see loadLoraAdapter).
    throw new Error(
      `${where}: a regular expression ("${value}") is not supported here; list the modules`,
    );
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new Error(`${where}: expected a list of module names, got ${JSON.stringify(value)}`);
  }
  const out: Projection[] = [];
  for (const name of value as string[]) {
    // peft matches list entries as a suffix of the module path ("self_attn.q_proj" works too).
    const p = PROJECTIONS.find((proj) =>
      name === proj || projectionPath(0, proj).endsWith(`.${name}`)
    );
    if (!p) {
      throw new Error(
        `${where}: "${name}" is not a supported module (supported: ${PROJECTIONS.join(", ")})`,
      );
    }
    if (!out.includes(p)) out.push(p);
  }
  if (out.length === 0) throw new Error(`${where}: no target modules`);
  return out;
}

/** peft version we write into `adapter_config.json` (the format we match). */
export const PEFT_VERSION = "0.21.0";

/**
 * `adapter_config.json` as peft writes it for a plain LoRA on a causal LM.
 * Keys are sorted as peft's `to_dict` + `json.dump(sort_keys=True)` does.
 */
export function peftConfigJson(config: LoraConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: config.baseModelNameOrPath,
    bias: "none",
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: config.layersToTransform,
    loftq_config: {},
    lora_alpha: config.loraAlpha,
    lora_bias: false,
    lora_dropout: config.loraDropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    peft_version: PEFT_VERSION,
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.targetModules],
    target_parameters: null,
    task_type: "CAUSAL_LM",
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: config.useRslora,
  };
  return json;
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === false ||
    (typeof v === "object" && Object.keys(v as object).length === 0);
}

/**
 * Parses an `adapter_config.json` written by peft (or by us). Features this
 * engine does not implement (DoRA, biases, rank/alpha patterns, fan-in-fan-out,
 * modules_to_save, other PEFT types) are errors naming the file and field,
 * never silently ignored.
 */
export function parsePeftConfig(json: unknown, file: string): LoraConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file}: expected a JSON object`);
  }
  const o = json as Record<string, unknown>;
  const field = (name: string, problem: string) =>
    new Error(`${file} (field "${name}"): ${problem}`);
  if (o.peft_type !== "LORA") {
    throw field(
      "peft_type",
      `only "LORA" adapters are supported, got ${JSON.stringify(o.peft_type)}`,
    );
  }
  const unsupported: [string, (v: unknown) => boolean][] = [
    ["use_dora", isEmpty],
    ["lora_bias", isEmpty],
    ["fan_in_fan_out", isEmpty],
    ["modules_to_save", isEmpty],
    ["rank_pattern", isEmpty],
    ["alpha_pattern", isEmpty],
    ["layer_replication", isEmpty],
    ["target_parameters", isEmpty],
    ["trainable_token_indices", isEmpty],
    ["bias", (v) => v === undefined || v === "none"],
  ];
  for (const [name, ok] of unsupported) {
    if (!ok(o[name])) throw field(name, `${JSON.stringify(o[name])} is not supported`);
  }
  const num = (name: string, fallback?: number): number => {
    const v = o[name] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw field(name, `expected a number, got ${JSON.stringify(o[name])}`);
    }
    return v;
  };
  let layers: number[] | null = null;
  const lt = o.layers_to_transform;
  if (typeof lt === "number") layers = [lt];
  else if (Array.isArray(lt)) layers = lt as number[];
  else if (lt !== null && lt !== undefined) {
    throw field("layers_to_transform", `expected an integer or a list, got ${JSON.stringify(lt)}`);
  }
  // A regex target_modules is resolved from the adapter's keys by the loader.
  const targetModules = typeof o.target_modules === "string" && o.target_modules !== "all-linear"
    ? []
    : resolveTargetModules(o.target_modules, `${file} (field "target_modules")`);
  const config: LoraConfig = {
    r: num("r", 8),
    loraAlpha: num("lora_alpha", 8),
    loraDropout: num("lora_dropout", 0),
    targetModules,
    useRslora: o.use_rslora === true,
    layersToTransform: layers,
    baseModelNameOrPath: typeof o.base_model_name_or_path === "string"
      ? o.base_model_name_or_path
      : null,
  };
  validateLoraConfig(config, file, targetModules.length > 0);
  return config;
}
