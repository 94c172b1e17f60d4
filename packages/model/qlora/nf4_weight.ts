/**
 * An NF4-quantised linear weight on the host, in the storage layout the GPU
 * kernel reads, plus the float64 reference dequantisation.
 *
 * Layout (row-major `[out, in]` weight flattened; element e = o·in + i):
 * - codes: 4-bit NF4 indices, 2 per byte, element 2j in the HIGH nibble of
 *   byte j (bitsandbytes' order); bytes little-endian in u32 words, so
 *   element e sits in word e>>3 at bit 8·((e>>1)&3) + (e even ? 4 : 0).
 * - blocks of `blockSize` (64) consecutive elements share one absmax (blocks
 *   run across row ends, as in bitsandbytes' flattened quantisation).
 * - absmax: f32 per block; or, with double quantisation, one u8 code per
 *   block (4 per u32 word, little-endian) + f32 per 256 blocks + one f32
 *   offset + the 256-entry f32 dynamic map.
 *
 * @module
 */

import { NF4_LEVELS, quantizeNf4Cpu } from "@irforge/tensor";
import {
  DOUBLE_QUANT_BLOCK,
  doubleDequantize,
  doubleQuantize,
  type DoubleQuantized,
} from "./double_quant.ts";

/**
 * The type the NF4 matmul rounds its operands to before multiplying
 * (bitsandbytes' `bnb_4bit_compute_dtype`; see `Nf4Linear`).
 */
export type Nf4ComputeDtype = "f32" | "f16" | "bf16";

/** Options of NF4 quantisation. */
export interface Nf4Options {
  /** Elements per absmax block (default 64, QLoRA's). */
  blockSize?: number;
  /** Quantise the absmax values too (bitsandbytes `bnb_4bit_use_double_quant`). */
  doubleQuant?: boolean;
  /** Matmul compute dtype of the uploaded layers (default `f32`); quantisation itself ignores it. */
  computeDtype?: Nf4ComputeDtype;
}

/** A quantised weight on the host. */
export interface Nf4Weight {
  /** `[out, in]`. */
  shape: [number, number];
  /** Elements per absmax block. */
  blockSize: number;
  /** ceil(n/2) bytes of packed codes. */
  codes: Uint8Array;
  /** Per-block absmax (f32), when not double-quantised. */
  absmax: Float32Array | null;
  /** Double-quantised absmax, when asked for. */
  doubleQuant: DoubleQuantized | null;
}

/** Quantises a row-major `[out, in]` weight to NF4 (nearest level after absmax scaling). */
export function quantizeNf4Weight(
  values: ArrayLike<number>,
  shape: [number, number],
  options: Nf4Options = {},
): Nf4Weight {
  const blockSize = options.blockSize ?? 64;
  if (values.length !== shape[0] * shape[1]) {
    throw new Error(`quantizeNf4Weight: ${values.length} values for [${shape.join(", ")}]`);
  }
  const { codes, absmax } = quantizeNf4Cpu(values, blockSize);
  return options.doubleQuant
    ? { shape, blockSize, codes, absmax: null, doubleQuant: doubleQuantize(absmax) }
    : { shape, blockSize, codes, absmax, doubleQuant: null };
}

/** The absmax the weight's dequantisation uses (after double quantisation, if any). */
export function nf4BlockScales(w: Nf4Weight): Float64Array {
  return w.doubleQuant ? doubleDequantize(w.doubleQuant) : Float64Array.from(w.absmax!);
}

/** Float64 reference dequantisation: level[code] · absmax[block]. */
export function dequantizeNf4Weight(w: Nf4Weight): Float64Array {
  const n = w.shape[0] * w.shape[1];
  const scales = nf4BlockScales(w);
  const out = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    const byte = w.codes[e >> 1]!;
    const code = e % 2 === 0 ? byte >> 4 : byte & 15;
    out[e] = NF4_LEVELS[code]! * scales[Math.floor(e / w.blockSize)]!;
  }
  return out;
}

/** The largest gap between adjacent NF4 levels (bounds the rounding error: gap/2 · absmax). */
export const NF4_MAX_GAP: number = Math.max(
  ...NF4_LEVELS.slice(1).map((v, i) => v - NF4_LEVELS[i]!),
);

/** Bytes each part of an NF4 weight of `n` elements occupies on the GPU. */
export interface Nf4Layout {
  /** Packed codes, rounded up to whole u32 words. */
  codeBytes: number;
  /** Block scales: f32 absmax, or u8 codes (whole words) + f32 per 256 blocks + the 256-entry map (the offset is a kernel parameter). */
  scaleBytes: number;
  /** Sum. */
  totalBytes: number;
  /** Number of absmax blocks. */
  blocks: number;
}

/** The GPU storage layout of an `n`-element NF4 weight (what {@link Nf4Linear} allocates). */
export function nf4Layout(n: number, options: Nf4Options = {}): Nf4Layout {
  const blockSize = options.blockSize ?? 64;
  const blocks = Math.ceil(n / blockSize);
  const codeBytes = 4 * Math.ceil(Math.ceil(n / 2) / 4);
  const scaleBytes = options.doubleQuant
    ? 4 * Math.ceil(blocks / 4) + 4 * Math.ceil(blocks / DOUBLE_QUANT_BLOCK) + 256 * 4
    : 4 * blocks;
  return { codeBytes, scaleBytes, totalBytes: codeBytes + scaleBytes, blocks };
}

/** `bytes` zero-padded to whole u32 words. */
export function toWords(bytes: Uint8Array): Uint8Array {
  const padded = new Uint8Array(4 * Math.ceil(bytes.length / 4));
  padded.set(bytes);
  return padded;
}
