/**
 * Safetensors element types: their sizes, and the order in which the
 * reference (Rust/Python) library lays tensors out in a file.
 *
 * @module
 */

/** Element types this package reads and writes. */
export type Dtype =
  | "BOOL"
  | "U8"
  | "I8"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/** Bytes per element of each {@link Dtype}. */
export const dtypeByteSize: Readonly<Record<Dtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

// Declaration order of `safetensors::Dtype` in the Rust library (the variants
// we support, in their relative order). The library sorts tensors by this
// rank, descending, then by name, so larger alignments come first.
const rustRank: Readonly<Record<Dtype, number>> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  I16: 3,
  U16: 4,
  F16: 5,
  BF16: 6,
  I32: 7,
  U32: 8,
  F32: 9,
  F64: 10,
  I64: 11,
  U64: 12,
};

/** `true` when `value` names a supported dtype. */
export function isDtype(value: unknown): value is Dtype {
  return typeof value === "string" && Object.hasOwn(dtypeByteSize, value);
}

/** Number of elements of a tensor of this shape (1 for a scalar `[]`). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

const utf8 = new TextEncoder();

/** Compares two names as Rust compares `String`s: by UTF-8 bytes. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

/**
 * Orders tensors as `safetensors.serialize` does: dtype rank descending, then
 * name ascending. Files written in this order are byte-identical to Python's.
 */
export function compareSafetensorsOrder(
  a: { name: string; dtype: Dtype },
  b: { name: string; dtype: Dtype },
): number {
  return rustRank[b.dtype] - rustRank[a.dtype] || compareUtf8(a.name, b.name);
}
