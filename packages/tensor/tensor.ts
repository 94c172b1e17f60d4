/**
 * The GPU tensor: a shape, a dtype and a pooled storage buffer.
 *
 * Tensors are always contiguous and row-major; `reshape` returns a view that
 * shares the storage (reference counted), every other op writes a new tensor.
 *
 * @module
 */

import { type ArrayFor, bytesPerElement, type DType } from "./dtype.ts";
import { defineKernel } from "./kernel.ts";
import { getRuntime } from "./runtime.ts";
import { keep, track } from "./scope.ts";
import type { TapeNode } from "./autograd_types.ts";
import { markUpdated } from "./storage_version.ts";

let nextId = 1;

/** Storage shared by a tensor and its views; freed when the last one goes. */
export class Storage {
  /** The pooled buffer. */
  readonly buffer: GPUBuffer;
  /** Bytes in use (≤ `buffer.size`). */
  readonly byteLength: number;
  #refs = 1;
  #companions: { dispose(): void }[] = [];
  /** Wraps a buffer from the pool. */
  constructor(buffer: GPUBuffer, byteLength: number) {
    this.buffer = buffer;
    this.byteLength = byteLength;
  }
  /** Adds a reference. */
  retain(): this {
    this.#refs++;
    return this;
  }
  /** Drops a reference; the buffer goes back to the pool at zero. */
  release(): void {
    if (--this.#refs === 0) {
      getRuntime().pool.release(this.buffer);
      for (const c of this.#companions) c.dispose();
    }
  }
  /** Ties `t`'s lifetime to this storage (nf4 absmax). */
  attach(t: { dispose(): void }): void {
    this.#companions.push(t);
  }
}

/** Extra storage of an `nf4` tensor. */
export interface Nf4Meta {
  /** Per-block absolute maxima, f32, one per `blockSize` elements. */
  absmax: Tensor;
  /** Elements per quantisation block (64 in QLoRA). */
  blockSize: number;
}

/** Any typed array `fromArray` accepts. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | number[];

/** Product of the dimensions (1 for a scalar `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`bad shape [${shape.join(", ")}]`);
    n *= d;
  }
  return n;
}

/** A GPU tensor. See the module docs and `scope.ts` for ownership. */
export class Tensor {
  /** Unique id (autograd bookkeeping). */
  readonly id: number = nextId++;
  /** Dimensions, row-major. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf with `requiresGrad` (owned by this tensor). */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor (internal). */
  node: TapeNode | undefined;
  /** nf4 scales; only for dtype `nf4`. */
  readonly nf4: Nf4Meta | undefined;
  #storage: Storage | undefined;

  /** Wraps storage (internal: use the factories and ops). */
  constructor(
    storage: Storage,
    shape: readonly number[],
    dtype: DType,
    options: { nf4?: Nf4Meta; untracked?: boolean } = {},
  ) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.#storage = storage;
    this.nf4 = options.nf4;
    if (!options.untracked) track(this);
  }

  /** Allocates an uninitialised tensor from the pool (internal). */
  static empty(shape: readonly number[], dtype: DType, what = "tensor"): Tensor {
    const bytes = Math.ceil(sizeOf(shape) * bytesPerElement(dtype));
    const buffer = getRuntime().pool.acquire(bytes, what);
    return new Tensor(new Storage(buffer, bytes), shape, dtype);
  }

  /**
   * Uploads `data` as a tensor of `shape` and `dtype` (default f32). Values
   * are converted (f16 rounds to nearest). `Uint8Array` data is taken as raw
   * bytes (used for nf4 codes).
   */
  static fromArray(data: TensorData, shape: readonly number[], dtype: DType = "f32"): Tensor {
    const n = sizeOf(shape);
    const raw = data instanceof Uint8Array;
    if (!raw && data.length !== n) {
      throw new Error(`fromArray: ${data.length} values for shape [${shape.join(", ")}] (${n})`);
    }
    let view: ArrayBufferView;
    if (raw) view = data;
    else if (dtype === "f32") view = data instanceof Float32Array ? data : Float32Array.from(data);
    else if (dtype === "f16") view = Float16Array.from(data as ArrayLike<number>);
    else if (dtype === "i32") view = data instanceof Int32Array ? data : Int32Array.from(data);
    else if (dtype === "u32") view = data instanceof Uint32Array ? data : Uint32Array.from(data);
    else throw new Error("fromArray: nf4 needs raw packed bytes (see quantizeNf4)");
    const t = Tensor.empty(shape, dtype);
    if (view.byteLength > 0) getRuntime().write(t.buffer, view);
    return t;
  }

  /**
   * Overwrites the tensor's contents from host memory, in order with the
   * work recorded before (pending launches are submitted first). `data`
   * holds raw elements of the tensor's dtype (e.g. a `Float32Array` for
   * f32, a `Float16Array` or `Uint16Array` for f16); `offset` is in
   * elements.
   *
   * @example
   * ```ts ignore
   * const w = Tensor.empty([3], "f32");
   * w.write(new Float32Array([1, 2, 3]));
   * ```
   */
  write(data: ArrayBufferView, offset = 0): void {
    const bpe = bytesPerElement(this.dtype);
    const byteOffset = offset * bpe;
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
      throw new Error(`write: offset ${offset} is not a 4-byte aligned element index of ${this}`);
    }
    if (byteOffset + data.byteLength > this.byteLength) {
      throw new Error(
        `write: ${data.byteLength} bytes at element ${offset} overflow ${this} (${this.byteLength} bytes)`,
      );
    }
    getRuntime().write(this.buffer, data, byteOffset);
    markUpdated([this]);
  }

  /** The GPU buffer (for raw kernels; the data starts at {@link byteOffset}). */
  get buffer(): GPUBuffer {
    if (!this.#storage) throw new Error(`tensor ${this.id} [${this.shape}] used after dispose()`);
    return this.#storage.buffer;
  }

  /** Byte offset of element 0 in {@link buffer}; always 0 (views share whole storage). */
  get byteOffset(): number {
    return 0;
  }

  /** Bytes of data (the buffer may be larger: pool buckets). */
  get byteLength(): number {
    return Math.ceil(this.size * bytesPerElement(this.dtype));
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#storage === undefined;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Releases this tensor's reference to its storage; idempotent. */
  dispose(): void {
    this.#storage?.release();
    this.#storage = undefined;
  }

  /**
   * A new tensor object sharing this storage with another shape of the same
   * size (internal: `reshape` and the autograd tape use it).
   */
  shareAs(shape: readonly number[], untracked = false): Tensor {
    if (!this.#storage) throw new Error(`tensor ${this.id} used after dispose()`);
    if (sizeOf(shape) !== this.size) {
      throw new Error(`reshape: [${this.shape}] has ${this.size} elements, [${shape}] does not`);
    }
    return new Tensor(this.#storage.retain(), shape, this.dtype, { nf4: this.nf4, untracked });
  }

  /** Detaches from every `tidy` scope (see `keep`); returns this. */
  keep(): this {
    return keep(this);
  }

  /** Reads the data back (f16 → Float32Array). Waits for pending work. */
  async toArray<D extends DType = DType>(this: Tensor & { dtype: D }): Promise<ArrayFor<D>>;
  async toArray(): Promise<Float32Array | Int32Array | Uint32Array> {
    if (this.dtype === "nf4") throw new Error("toArray: dequantise an nf4 tensor first");
    const bytes = await getRuntime().read(this.buffer, this.byteLength);
    switch (this.dtype) {
      case "f32":
        return new Float32Array(bytes);
      case "i32":
        return new Int32Array(bytes);
      case "u32":
        return new Uint32Array(bytes);
      default:
        return Float32Array.from(new Float16Array(bytes));
    }
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements`);
    return (await this.toArray())[0]!;
  }

  /** `Tensor(f32 [2, 3])`. */
  toString(): string {
    return `Tensor(${this.dtype} [${this.shape.join(", ")}])`;
  }
}

const FILL = defineKernel({
  name: "fill",
  key: () => "",
  uniforms: { words: "u32", word: "u32" },
  bindings: () => ({ OUT: { type: "array<u32>", access: "read_write" } }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = g.x + g.y * n.x * 256u;
  if (i < P.words) { OUT[i] = P.word; }
}`,
});

function fillWords(t: Tensor, word: number): void {
  const words = Math.ceil(t.byteLength / 4);
  if (words === 0) return;
  const groups = Math.ceil(words / 256);
  const x = Math.min(groups, 65535);
  getRuntime().launch(FILL, undefined, { OUT: t.buffer }, { words, word }, [
    x,
    Math.ceil(groups / x),
  ]);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
  const t = Tensor.empty(shape, dtype);
  const view = new DataView(new ArrayBuffer(4));
  if (dtype === "f32") view.setFloat32(0, value, true);
  else if (dtype === "i32") view.setInt32(0, value, true);
  else if (dtype === "u32") view.setUint32(0, value, true);
  else if (dtype === "f16") {
    view.setFloat16(0, value, true);
    view.setFloat16(2, value, true);
  } else throw new Error("full: nf4 cannot be filled");
  fillWords(t, view.getUint32(0, true));
  return t;
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
  return full(shape, 0, dtype);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], dtype: DType = "f32"): Tensor {
  return full(shape, 1, dtype);
}

/** Shorthand for {@link Tensor.fromArray}. */
export function tensor(data: TensorData, shape: readonly number[], dtype: DType = "f32"): Tensor {
  return Tensor.fromArray(data, shape, dtype);
}
