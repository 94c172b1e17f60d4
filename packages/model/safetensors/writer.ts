/**
 * Writes `.safetensors` files laid out exactly as the reference Rust/Python
 * library does (tensors sorted by dtype size descending, then name; compact
 * JSON header with `__metadata__` first; header padded with spaces to a
 * multiple of 8), so a file written from the same tensors is byte-identical.
 * Data is streamed tensor by tensor and may be produced lazily by a callback,
 * so a checkpoint never has to sit in memory whole. Also writes sharded
 * checkpoints as transformers does.
 *
 * @module
 */

import { join } from "node:path";
import { checkpointIndexName, singleCheckpointName } from "./checkpoint.ts";
import { CheckpointError } from "./checkpoint_error.ts";
import {
  compareSafetensorsOrder,
  type Dtype,
  dtypeByteSize,
  elementCount,
  isDtype,
} from "./dtype.ts";

/** One tensor to write. `data` holds little-endian elements of `dtype` (e.g. Uint16Array bits for F16/BF16). */
export interface TensorToWrite {
  /** Element type to record in the header. */
  dtype: Dtype;
  /** Dimensions, outermost first. */
  shape: readonly number[];
  /** The bytes, or a function producing them when the writer reaches this tensor. */
  data: ArrayBufferView | (() => ArrayBufferView | Promise<ArrayBufferView>);
}

/** Tensors keyed by name, as an object or as `[name, tensor]` pairs. */
export type TensorsToWrite =
  | Record<string, TensorToWrite>
  | Iterable<readonly [string, TensorToWrite]>;

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** `__metadata__` strings (transformers expects `{format: "pt"}`); none by default. */
  metadata?: Record<string, string> | null;
  /** `safetensors` (default): the reference library's order; `given`: the caller's order. */
  order?: "safetensors" | "given";
  /** Called after each tensor with bytes written so far and the total. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

function toEntries(tensors: TensorsToWrite): [string, TensorToWrite][] {
  const pairs = Symbol.iterator in tensors
    ? [...(tensors as Iterable<readonly [string, TensorToWrite]>)]
    : Object.entries(tensors as Record<string, TensorToWrite>);
  return pairs.map(([name, tensor]) => [name, tensor]);
}

function checkTensor(path: string, name: string, tensor: TensorToWrite): number {
  if (!isDtype(tensor.dtype)) {
    throw new CheckpointError(path, name, `unsupported dtype ${JSON.stringify(tensor.dtype)}`);
  }
  if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(
      path,
      name,
      `shape ${JSON.stringify(tensor.shape)} is not a list of non-negative integers`,
    );
  }
  if (name === "__metadata__") {
    throw new CheckpointError(path, name, "this name is reserved by the format");
  }
  return elementCount(tensor.shape) * dtypeByteSize[tensor.dtype];
}

/** A file's layout: the 8-byte length + padded header, and tensors in data order. */
export interface SafetensorsLayout {
  /** Length prefix and JSON header, padded with spaces to a multiple of 8. */
  header: Uint8Array;
  /** Tensors in the order their data follows the header. */
  order: { name: string; tensor: TensorToWrite; byteLength: number }[];
  /** Bytes of the data section. */
  dataBytes: number;
}

/** Computes the header and data order of a file holding `tensors` (no I/O). */
export function planSafetensors(
  tensors: TensorsToWrite,
  options: Pick<WriteSafetensorsOptions, "metadata" | "order"> = {},
  path = "<memory>",
): SafetensorsLayout {
  const seen = new Set<string>();
  const order = toEntries(tensors).map(([name, tensor]) => {
    if (seen.has(name)) throw new CheckpointError(path, name, "duplicate tensor name");
    seen.add(name);
    return { name, tensor, byteLength: checkTensor(path, name, tensor) };
  });
  if ((options.order ?? "safetensors") === "safetensors") {
    order.sort((a, b) =>
      compareSafetensorsOrder({ name: a.name, dtype: a.tensor.dtype }, {
        name: b.name,
        dtype: b.tensor.dtype,
      })
    );
  }
  // Written by hand to match serde_json's compact output key for key.
  const parts: string[] = [];
  if (options.metadata) parts.push(`"__metadata__":${JSON.stringify(options.metadata)}`);
  let offset = 0;
  for (const { name, tensor, byteLength } of order) {
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":[${
        tensor.shape.join(",")
      }],"data_offsets":[${offset},${offset + byteLength}]}`,
    );
    offset += byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, order, dataBytes: offset };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/**
 * Writes `tensors` to `path` (via a temporary file renamed at the end, so a
 * crash never leaves a truncated checkpoint). Returns the bytes written.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  options: WriteSafetensorsOptions = {},
): Promise<number> {
  const layout = planSafetensors(tensors, options, path);
  const temporary = `${path}.partial`;
  const file = await Deno.open(temporary, { write: true, create: true, truncate: true });
  let written = 0;
  try {
    await writeAll(file, layout.header);
    for (const { name, tensor, byteLength } of layout.order) {
      const view = typeof tensor.data === "function" ? await tensor.data() : tensor.data;
      if (view.byteLength !== byteLength) {
        throw new CheckpointError(
          path,
          name,
          `data has ${view.byteLength} bytes but ${tensor.dtype} ${
            JSON.stringify(tensor.shape)
          } needs ${byteLength}`,
        );
      }
      await writeAll(file, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      written += byteLength;
      options.onProgress?.(written, layout.dataBytes);
    }
  } catch (error) {
    file.close();
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  file.close();
  await Deno.rename(temporary, path);
  return layout.header.length + layout.dataBytes;
}

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Largest shard in bytes of tensor data (default 2 GB = 2e9, as transformers counts "2GB"). */
  maxShardBytes?: number;
  /** `__metadata__` of every shard; default `{format: "pt"}`, which transformers expects. */
  metadata?: Record<string, string>;
  /** Called after each tensor with bytes written so far and the total. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

/** What {@link saveCheckpoint} wrote. */
export interface SavedCheckpoint {
  /** Shard file names, in order (one `model.safetensors` when unsharded). */
  files: string[];
  /** The index file name, or `null` when unsharded. */
  index: string | null;
  /** Bytes of tensor data (the index's `metadata.total_size`). */
  totalSize: number;
}

/**
 * Saves a checkpoint into `dir` as transformers' `save_pretrained` does:
 * tensors are packed greedily in the given order into shards of at most
 * `maxShardBytes` (a larger tensor gets a shard of its own), named
 * `model-00001-of-0000N.safetensors` with `model.safetensors.index.json`
 * (`metadata.total_size`, `weight_map` sorted by name), or a single
 * `model.safetensors` when everything fits. Stale shards and index files of a
 * previous save in `dir` are removed so the result cannot be mixed up.
 */
export async function saveCheckpoint(
  dir: string,
  tensors: TensorsToWrite,
  options: SaveCheckpointOptions = {},
): Promise<SavedCheckpoint> {
  const maxShardBytes = options.maxShardBytes ?? 2_000_000_000;
  const metadata = options.metadata ?? { format: "pt" };
  await Deno.mkdir(dir, { recursive: true });
  const entries = toEntries(tensors);
  const shards: [string, TensorToWrite][][] = [];
  let current: [string, TensorToWrite][] = [];
  let currentBytes = 0;
  let totalSize = 0;
  const seen = new Set<string>();
  for (const [name, tensor] of entries) {
    if (seen.has(name)) throw new CheckpointError(dir, name, "duplicate tensor name");
    seen.add(name);
    const bytes = checkTensor(dir, name, tensor);
    totalSize += bytes;
    if (bytes > maxShardBytes) {
      shards.push([[name, tensor]]);
      continue;
    }
    if (currentBytes + bytes > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push([name, tensor]);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);

  const count = shards.length;
  const pad = (n: number) => String(n).padStart(5, "0");
  const files = count === 1
    ? [singleCheckpointName]
    : shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(count)}.safetensors`);

  // Remove what a previous save left that this one would not overwrite.
  const keep = new Set(files);
  for (const entry of Deno.readDirSync(dir)) {
    const stale = /^model-\d{5}-of-\d{5}\.safetensors$/.test(entry.name) ||
      entry.name === singleCheckpointName || entry.name === checkpointIndexName;
    if (entry.isFile && stale && !keep.has(entry.name)) await Deno.remove(join(dir, entry.name));
  }

  let written = 0;
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const shard = shards[i]!;
    const before = written;
    await writeSafetensors(join(dir, files[i]!), shard, {
      metadata,
      onProgress: (bytes) => {
        written = before + bytes;
        options.onProgress?.(written, totalSize);
      },
    });
    for (const [name] of shard) weightMap[name] = files[i]!;
  }
  if (count === 1) return { files, index: null, totalSize };

  const sortedMap: Record<string, string> = {};
  for (const name of Object.keys(weightMap).sort()) sortedMap[name] = weightMap[name]!;
  const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
  const indexPath = join(dir, checkpointIndexName);
  await Deno.writeTextFile(indexPath, JSON.stringify(index, null, 2) + "\n");
  return { files, index: checkpointIndexName, totalSize };
}
