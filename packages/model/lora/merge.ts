/**
 * Merging an adapter into its base checkpoint: W' = W + scaling · B·A for
 * every adapted projection, computed in float64 on the host, one tensor at a
 * time (a checkpoint is never wholly in memory). The result is a plain
 * Hugging Face directory that transformers loads without peft.
 *
 * Tensors that train beside the adapter and that the base lacks, kept in the
 * adapter directory's `model.safetensors` (a cross-encoder's `score.weight`
 * head, which peft keeps as `modules_to_save`), are carried into the merged
 * checkpoint unchanged.
 *
 * @module
 */

import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { loadModelConfig } from "../config.ts";
import { CheckpointError } from "../safetensors/checkpoint_error.ts";
import { type Checkpoint, openCheckpoint } from "../safetensors/checkpoint.ts";
import type { Dtype } from "../safetensors/dtype.ts";
import { f32ArrayToBf16, f32ArrayToF16 } from "../safetensors/half.ts";
import { saveCheckpoint, type TensorToWrite } from "../safetensors/writer.ts";
import { peftWeightKey } from "./adapter.ts";
import { loraScaling } from "./config.ts";
import { ADAPTER_CONFIG_NAME, readLoraAdapter } from "./io.ts";

/**
 * W + scaling·B·A in float64, rounded once to f32. `w` is `[out, in]`, `a`
 * `[r, in]`, `b` `[out, r]`.
 */
export function mergeLoraWeight(
  w: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  r: number,
  scaling: number,
): Float32Array {
  const inFeatures = a.length / r, out = b.length / r;
  if (w.length !== out * inFeatures) {
    throw new Error(`merge: weight has ${w.length} values, B·A is [${out}, ${inFeatures}]`);
  }
  const merged = new Float32Array(w.length);
  const row = new Float64Array(inFeatures);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]!;
      if (bk === 0) continue;
      const aOff = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) row[i]! += bk * a[aOff + i]!;
    }
    const wOff = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) merged[wOff + i] = w[wOff + i]! + scaling * row[i]!;
  }
  return merged;
}

/** Options of {@link mergeLoraCheckpoint}. */
export interface MergeOptions {
  /** Base model directory (config.json + safetensors). */
  base: string;
  /** peft adapter directory. */
  adapter: string;
  /** Output directory. */
  out: string;
  /** Largest shard (bytes of tensor data); default 2 GB like transformers. */
  maxShardBytes?: number;
  /** Called after each tensor: (done, total, name). */
  onProgress?: (done: number, total: number, name: string) => void;
}

/** What {@link mergeLoraCheckpoint} did. */
export interface MergeReport {
  /** Tensors written. */
  tensors: number;
  /** Projections that received a delta. */
  merged: number;
  /** Tensors the base lacks, carried from the adapter directory's `model.safetensors`. */
  carried: string[];
  /** Output files. */
  files: string[];
}

const FLOAT_DTYPES: Dtype[] = ["F32", "F16", "BF16", "F64"];

/** The adapter directory's own weights file (e.g. a cross-encoder's head beside the adapter). */
export const ADAPTER_SIDE_WEIGHTS = "model.safetensors";

/**
 * Writes base + adapter as a merged checkpoint in `out`. Weights keep the
 * base's dtype (F64 is written as F32). Every adapted module must exist in
 * the base with the adapter's shapes; otherwise an error names the adapter
 * file and key. Tensors of the adapter directory's `model.safetensors` that
 * the base lacks (a cross-encoder's `score.weight`) are written too, in
 * their own dtype. Non-weight files of the base (config, tokenizer,
 * generation config) are copied.
 */
export async function mergeLoraCheckpoint(options: MergeOptions): Promise<MergeReport> {
  // Fails early, naming the file, when the base is not a model directory.
  await loadModelConfig(options.base);
  const { config, modules, file } = await readLoraAdapter(options.adapter);
  const scaling = loraScaling(config);
  const checkpoint = await openCheckpoint(options.base);
  const sidePath = join(options.adapter, ADAPTER_SIDE_WEIGHTS);
  let side: Checkpoint | null = null;
  try {
    side = existsSync(sidePath) ? await openCheckpoint(sidePath) : null;
    for (const [path, { a, b }] of modules) {
      const name = `${path}.weight`;
      if (!checkpoint.has(name)) {
        throw new CheckpointError(
          file,
          peftWeightKey(path, "A"),
          `the base checkpoint ${checkpoint.path} has no ${name}`,
        );
      }
      const [out, inFeatures] = checkpoint.info(name).shape as [number, number];
      const r = config.r;
      if (a.length !== r * inFeatures || b.length !== out * r) {
        throw new CheckpointError(
          file,
          peftWeightKey(path, a.length !== r * inFeatures ? "A" : "B"),
          `A [${r}, ${a.length / r}] / B [${
            b.length / r
          }, ${r}] do not fit ${name} [${out}, ${inFeatures}] of ${checkpoint.path}`,
        );
      }
    }
    const carried = side ? side.names().filter((name) => !checkpoint.has(name)) : [];
    const names = [...checkpoint.names(), ...carried];
    const carriedSet = new Set(carried);
    let done = 0, merged = 0;
    const tensors: [string, TensorToWrite][] = names.map((name) => {
      const source = carriedSet.has(name) ? side! : checkpoint;
      const info = source.info(name);
      if (!FLOAT_DTYPES.includes(info.dtype)) {
        throw new CheckpointError(info.file, name, `cannot merge into dtype ${info.dtype}`);
      }
      const dtype: Dtype = info.dtype === "F64" ? "F32" : info.dtype;
      return [name, {
        dtype,
        shape: info.shape,
        data: async () => {
          let values = await source.read(name, { as: "f32" });
          const module = name.endsWith(".weight") ? modules.get(name.slice(0, -7)) : undefined;
          if (module) {
            values = mergeLoraWeight(values, module.a, module.b, config.r, scaling);
            merged++;
          }
          options.onProgress?.(++done, names.length, name);
          if (dtype === "F16") return f32ArrayToF16(values);
          if (dtype === "BF16") return f32ArrayToBf16(values);
          return values;
        },
      }];
    });
    const saved = await saveCheckpoint(options.out, tensors, {
      maxShardBytes: options.maxShardBytes,
    });
    copyCompanionFiles(options.base, options.out);
    if (merged !== modules.size) {
      throw new Error(`merge: ${modules.size} adapted modules but ${merged} merged`);
    }
    return {
      tensors: names.length,
      merged,
      carried,
      files: saved.index ? [...saved.files, saved.index] : saved.files,
    };
  } finally {
    side?.close();
    checkpoint.close();
  }
}

function copyCompanionFiles(from: string, to: string): void {
  for (const entry of Deno.readDirSync(from)) {
    if (!entry.isFile) continue;
    const n = entry.name;
    if (n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json")) continue;
    if (n === ADAPTER_CONFIG_NAME || n.endsWith(".py") || n.endsWith(".bin")) continue;
    const keep = n === "config.json" || n === "generation_config.json" ||
      n.startsWith("tokenizer") || n === "special_tokens_map.json" || n.endsWith(".model");
    if (keep && !existsSync(join(to, n))) copyFileSync(join(from, n), join(to, n));
  }
}
