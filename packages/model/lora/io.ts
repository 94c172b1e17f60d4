/**
 * Reading and writing adapters in peft's format: a directory with
 * `adapter_config.json` and `adapter_model.safetensors` whose keys are
 * `base_model.model.<module path>.lora_A.weight` (`[r, in]`) and
 * `….lora_B.weight` (`[out, r]`). Files saved here load in peft
 * (`PeftModel.from_pretrained`), and peft's files load here.
 *
 * @module
 */

import { join } from "node:path";
import { type CausalLM, PROJECTIONS } from "../causal_lm.ts";
import type { ModelConfig } from "../config.ts";
import { CheckpointError } from "../safetensors/checkpoint_error.ts";
import { SafetensorsFile } from "../safetensors/reader.ts";
import { writeSafetensors } from "../safetensors/writer.ts";
import { LoraAdapter, type LoraModuleArrays, peftWeightKey, projectionShape } from "./adapter.ts";
import { type LoraConfig, parsePeftConfig, peftConfigJson } from "./config.ts";

/** File name of the adapter configuration. */
export const ADAPTER_CONFIG_NAME = "adapter_config.json";
/** File name of the adapter weights. */
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";

/** An adapter read into host memory. */
export interface LoraAdapterArrays {
  /** The parsed configuration. */
  config: LoraConfig;
  /** Factors by HF module path, in file order. */
  modules: Map<string, LoraModuleArrays>;
  /** The weights file (for messages). */
  file: string;
}

const KEY =
  /^base_model\.model\.(model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+))\.lora_([AB])\.weight$/;

/**
 * Reads and validates an adapter directory. With `model` given, every module
 * must be one of its projections with matching shapes. Errors name the file
 * and key.
 */
export async function readLoraAdapter(
  dir: string,
  model?: ModelConfig,
): Promise<LoraAdapterArrays> {
  const configPath = join(dir, ADAPTER_CONFIG_NAME);
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    throw new Error(`${configPath}: cannot read the adapter config (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${configPath}: invalid JSON (${(e as Error).message})`);
  }
  const config = parsePeftConfig(json, configPath);
  const file = join(dir, ADAPTER_WEIGHTS_NAME);
  const st = await SafetensorsFile.open(file);
  try {
    const factors = new Map<string, Partial<LoraModuleArrays>>();
    const found = new Set<string>();
    for (const key of st.names()) {
      const m = KEY.exec(key);
      const proj = m?.[4];
      if (!m || !PROJECTIONS.includes(proj as typeof PROJECTIONS[number])) {
        throw new CheckpointError(
          file,
          key,
          "not a LoRA factor of a Mistral/Llama projection " +
            "(expected base_model.model.model.layers.<i>.<self_attn|mlp>.<proj>.lora_<A|B>.weight)",
        );
      }
      const path = m[1]!, layer = Number(m[2]), factor = m[5] as "A" | "B";
      const expectedGroup = ["gate_proj", "up_proj", "down_proj"].includes(proj!)
        ? "mlp"
        : "self_attn";
      if (m[3] !== expectedGroup) {
        throw new CheckpointError(file, key, `${proj} belongs to ${expectedGroup}, not ${m[3]}`);
      }
      if (config.targetModules.length > 0 && !config.targetModules.includes(proj as never)) {
        throw new CheckpointError(
          file,
          key,
          `module ${proj} is not in target_modules of ${ADAPTER_CONFIG_NAME} (${
            config.targetModules.join(", ")
          })`,
        );
      }
      if (model && layer >= model.numLayers) {
        throw new CheckpointError(file, key, `layer ${layer} but the model has ${model.numLayers}`);
      }
      const info = st.info(key);
      if (info.shape.length !== 2) {
        throw new CheckpointError(
          file,
          key,
          `expected a 2-D tensor, got [${info.shape.join(", ")}]`,
        );
      }
      const [rows, cols] = info.shape as [number, number];
      const rankDim = factor === "A" ? rows : cols;
      if (rankDim !== config.r) {
        throw new CheckpointError(
          file,
          key,
          `shape [${rows}, ${cols}] has rank ${rankDim}, ${ADAPTER_CONFIG_NAME} says r = ${config.r}`,
        );
      }
      if (model) {
        const [out, inFeatures] = projectionShape(model, path);
        const want = factor === "A" ? [config.r, inFeatures] : [out, config.r];
        if (rows !== want[0] || cols !== want[1]) {
          throw new CheckpointError(
            file,
            key,
            `shape [${rows}, ${cols}] does not fit the model's ${path} [${out}, ${inFeatures}] ` +
              `(expected [${want.join(", ")}])`,
          );
        }
      }
      const data = await st.read(key, { as: "f32" });
      const entry = factors.get(path) ?? {};
      if (factor === "A") entry.a = data;
      else entry.b = data;
      factors.set(path, entry);
      found.add(proj!);
    }
    if (factors.size === 0) throw new CheckpointError(file, undefined, "holds no LoRA factors");
    const modules = new Map<string, LoraModuleArrays>();
    for (const [path, { a, b }] of factors) {
      if (!a || !b) {
        const missing = peftWeightKey(path, a ? "B" : "A");
        throw new CheckpointError(file, missing, "missing (each module needs lora_A and lora_B)");
      }
      modules.set(path, { a, b });
    }
    if (config.targetModules.length === 0) {
      config.targetModules = PROJECTIONS.filter((p) => found.has(p));
    }
    return { config, modules, file };
  } finally {
    st.close();
  }
}

/**
 * Loads a peft adapter directory for `model`, attaches it (base frozen,
 * factors trainable) and returns it.
 */
export async function loadLoraAdapter(
  model: CausalLM,
  dir: string,
  options: { seed?: number } = {},
): Promise<LoraAdapter> {
  const { config, modules } = await readLoraAdapter(dir, model.config);
  return LoraAdapter.fromArrays(config, modules, options.seed ?? 0).attach(model);
}

/**
 * Writes `adapter` as peft does: `adapter_config.json` (peft's keys, sorted,
 * 2-space indent) and `adapter_model.safetensors` (F32 factors under peft's
 * keys, metadata `{format: "pt"}`).
 */
export async function saveLoraAdapter(adapter: LoraAdapter, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const json = peftConfigJson(adapter.config);
  await Deno.writeTextFile(join(dir, ADAPTER_CONFIG_NAME), JSON.stringify(json, null, 2) + "\n");
  const tensors: [string, { dtype: "F32"; shape: number[]; data: () => Promise<Float32Array> }][] =
    [];
  for (const [key, t] of adapter.parameters()) {
    tensors.push([key, {
      dtype: "F32",
      shape: [...t.shape],
      data: async () => (await t.toArray()) as Float32Array,
    }]);
  }
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_NAME), tensors, {
    metadata: { format: "pt" },
  });
}
