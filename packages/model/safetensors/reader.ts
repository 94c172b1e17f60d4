/**
 * Streaming reader for one `.safetensors` file: the header is parsed and
 * validated on open, and each tensor's byte range is read on demand, so a
 * checkpoint larger than memory can be loaded one tensor at a time.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`,
 * offsets relative to the data section), then the data section.
 *
 * @module
 */

import { CheckpointError } from "./checkpoint_error.ts";
import { type Dtype, dtypeByteSize, elementCount, isDtype } from "./dtype.ts";
import {
  bf16ArrayToF16,
  bf16ArrayToF32,
  f16ArrayToF32,
  f32ArrayToF16,
  f64ArrayToF16,
  f64ArrayToF32,
} from "./half.ts";

/** What the header says about one tensor. */
export interface TensorInfo {
  /** Element type as stored. */
  dtype: Dtype;
  /** Dimensions, outermost first (row-major). */
  shape: number[];
  /** Bytes of stored data (`elements × dtype size`). */
  byteLength: number;
  /** Absolute position of the first byte in the file. */
  fileOffset: number;
}

/**
 * How {@link SafetensorsFile.read} returns the data: `f32` (Float32Array,
 * converting F16/BF16/F64), `f16` (Uint16Array of IEEE half bits, converting
 * F32/BF16/F64 with round-to-nearest-even), `raw` (the stored bytes), or
 * `native` (the typed array that matches the stored dtype; F16/BF16 as
 * Uint16Array bits, I64/U64 as BigInt64Array/BigUint64Array).
 */
export type ReadAs = "f32" | "f16" | "raw" | "native";

/** The typed array `native` gives for each dtype. */
export type NativeArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Result type of a read for each {@link ReadAs}. */
export interface ReadResult {
  /** Float32 values. */
  f32: Float32Array;
  /** IEEE half bit patterns. */
  f16: Uint16Array;
  /** Stored bytes, little-endian. */
  raw: Uint8Array;
  /** The dtype's own typed array. */
  native: NativeArray;
}

/** The reference library's header limit; anything larger is surely corrupt. */
const maxHeaderBytes = 100_000_000;

/** Parses and validates a header against a file of `fileSize` bytes. */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  file: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> | null } {
  const dataStart = 8 + headerBytes.length;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(file, undefined, "header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(
      file,
      undefined,
      `header is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CheckpointError(file, undefined, "header is not a JSON object");
  }
  let metadata: Record<string, string> | null = null;
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (
        typeof value !== "object" || value === null || Array.isArray(value) ||
        !Object.values(value).every((v) => typeof v === "string")
      ) {
        throw new CheckpointError(file, undefined, "__metadata__ must map strings to strings");
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const fail = (problem: string): never => {
      throw new CheckpointError(file, name, problem);
    };
    if (typeof value !== "object" || value === null) fail("header entry is not an object");
    const entry = value as Record<string, unknown>;
    const dtype = entry["dtype"];
    if (!isDtype(dtype)) {
      fail(
        `unsupported dtype ${JSON.stringify(dtype)} (supported: ${
          Object.keys(dtypeByteSize).join(", ")
        })`,
      );
    }
    const shape = entry["shape"];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offsets = entry["data_offsets"];
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = elementCount(shape as number[]) * dtypeByteSize[dtype as Dtype];
    if (end < begin || end - begin !== expected) {
      fail(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${
          JSON.stringify(shape)
        } needs ${expected}`,
      );
    }
    if (dataStart + end > fileSize) {
      fail(
        `data ends at byte ${dataStart + end} but the file has only ${fileSize} bytes (truncated?)`,
      );
    }
    entries.push({ name, dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }
  // As the reference library: tensors must tile the data section exactly, no overlap, no gap.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  for (const entry of entries) {
    if (entry.begin < position) {
      throw new CheckpointError(
        file,
        entry.name,
        `data_offsets [${entry.begin}, ${entry.end}] overlap the previous tensor (ends at ${position})`,
      );
    }
    if (entry.begin > position) {
      throw new CheckpointError(
        file,
        entry.name,
        `data_offsets start at ${entry.begin}, leaving a gap after byte ${position}`,
      );
    }
    position = entry.end;
  }
  if (dataStart + position !== fileSize) {
    throw new CheckpointError(
      file,
      undefined,
      `tensors cover ${position} data bytes but the file holds ${fileSize - dataStart}`,
    );
  }
  const tensors = new Map<string, TensorInfo>();
  for (const entry of entries) {
    tensors.set(entry.name, {
      dtype: entry.dtype,
      shape: entry.shape,
      byteLength: entry.end - entry.begin,
      fileOffset: dataStart + entry.begin,
    });
  }
  return { tensors, metadata };
}

/** Reads exactly `buffer.length` bytes at `position`, or throws. */
async function readExactly(
  handle: Deno.FsFile,
  position: number,
  buffer: Uint8Array,
  fail: (problem: string) => never,
): Promise<void> {
  await handle.seek(position, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.length) {
    const count = await handle.read(buffer.subarray(filled));
    if (count === null) fail(`unexpected end of file at byte ${position + filled}`);
    filled += count!;
  }
}

/** One open `.safetensors` file. Call {@link SafetensorsFile.close} when done. */
export class SafetensorsFile {
  /** Path as given to {@link SafetensorsFile.open}. */
  readonly path: string;
  /** `__metadata__` of the header, or `null`. */
  readonly metadata: Record<string, string> | null;
  readonly #tensors: Map<string, TensorInfo>;
  readonly #handle: Deno.FsFile;
  // Reads share one file position; chain them so concurrent reads don't interleave seeks.
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    path: string,
    handle: Deno.FsFile,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string> | null,
  ) {
    this.path = path;
    this.#handle = handle;
    this.#tensors = tensors;
    this.metadata = metadata;
  }

  /** Opens `path`, reads and validates its header; throws {@link CheckpointError} when corrupt. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: Deno.FsFile;
    try {
      handle = await Deno.open(path, { read: true });
    } catch (error) {
      throw new CheckpointError(path, undefined, `cannot open: ${(error as Error).message}`);
    }
    try {
      const fileSize = (await handle.stat()).size;
      const fail = (problem: string): never => {
        throw new CheckpointError(path, undefined, problem);
      };
      if (fileSize < 8) fail(`file has ${fileSize} bytes, too short for a safetensors header`);
      const lengthBytes = new Uint8Array(8);
      await readExactly(handle, 0, lengthBytes, fail);
      const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      if (headerLength > BigInt(maxHeaderBytes)) {
        fail(`header length ${headerLength} is over the 100 MB limit (corrupt file?)`);
      }
      const length = Number(headerLength);
      if (8 + length > fileSize) {
        fail(`header length ${length} runs past the end of the ${fileSize}-byte file (truncated?)`);
      }
      const headerBytes = new Uint8Array(length);
      await readExactly(handle, 8, headerBytes, fail);
      const { tensors, metadata } = parseSafetensorsHeader(headerBytes, fileSize, path);
      return new SafetensorsFile(path, handle, tensors, metadata);
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  /** Tensor names in file (data) order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** `true` when the file holds `name`. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Header information of `name`; throws when absent. */
  info(name: string): TensorInfo {
    const info = this.#tensors.get(name);
    if (!info) throw new CheckpointError(this.path, name, "no such tensor in this file");
    return info;
  }

  /** Reads one tensor's data, converting as `as` says (default `native`). */
  async read<A extends ReadAs = "native">(
    name: string,
    options?: { as?: A },
  ): Promise<ReadResult[A]> {
    const info = this.info(name);
    const as = options?.as ?? "native";
    const raw = await this.readRaw(name);
    return convert(raw, info.dtype, as, this.path, name) as ReadResult[A];
  }

  /** The stored bytes of `name` (a fresh, 8-byte-aligned buffer). */
  readRaw(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const next = this.#queue.then(async () => {
      const bytes = new Uint8Array(info.byteLength);
      await readExactly(this.#handle, info.fileOffset, bytes, (problem) => {
        throw new CheckpointError(this.path, name, problem);
      });
      return bytes;
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Closes the file. */
  close(): void {
    this.#handle.close();
  }
}

/** Views stored bytes as the dtype's typed array (the buffer is fresh and aligned). */
export function nativeView(raw: Uint8Array, dtype: Dtype): NativeArray {
  const { buffer, byteOffset } = raw;
  const count = raw.byteLength / dtypeByteSize[dtype];
  switch (dtype) {
    case "F32":
      return new Float32Array(buffer, byteOffset, count);
    case "F64":
      return new Float64Array(buffer, byteOffset, count);
    case "F16":
    case "BF16":
    case "U16":
      return new Uint16Array(buffer, byteOffset, count);
    case "I16":
      return new Int16Array(buffer, byteOffset, count);
    case "I32":
      return new Int32Array(buffer, byteOffset, count);
    case "U32":
      return new Uint32Array(buffer, byteOffset, count);
    case "I64":
      return new BigInt64Array(buffer, byteOffset, count);
    case "U64":
      return new BigUint64Array(buffer, byteOffset, count);
    case "I8":
      return new Int8Array(buffer, byteOffset, count);
    case "U8":
    case "BOOL":
      return raw;
  }
}

function convert(raw: Uint8Array, dtype: Dtype, as: ReadAs, file: string, name: string) {
  if (as === "raw") return raw;
  const native = nativeView(raw, dtype);
  if (as === "native") return native;
  const fail = (): never => {
    throw new CheckpointError(file, name, `cannot read ${dtype} as ${as}; use "native" or "raw"`);
  };
  if (as === "f32") {
    switch (dtype) {
      case "F32":
        return native;
      case "F16":
        return f16ArrayToF32(native as Uint16Array);
      case "BF16":
        return bf16ArrayToF32(native as Uint16Array);
      case "F64":
        return f64ArrayToF32(native as Float64Array);
      default:
        return fail();
    }
  }
  switch (dtype) {
    case "F16":
      return native;
    case "F32":
      return f32ArrayToF16(native as Float32Array);
    case "BF16":
      return bf16ArrayToF16(native as Uint16Array);
    case "F64":
      return f64ArrayToF16(native as Float64Array);
    default:
      return fail();
  }
}
