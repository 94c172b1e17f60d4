/**
 * bitsandbytes' double quantisation of the NF4 block scales: the per-block
 * absmax values minus their mean are quantised blockwise (256 per block) to
 * 8 bits with bitsandbytes' signed dynamic map (`create_dynamic_map()`),
 * each 256-block keeping its own f32 absmax; dequantisation is
 * `code[q] · scale[block] + mean`, as `quantize_4bit(compress_statistics=True)`
 * and `dequantize_blockwise` do.
 *
 * @module
 */

/** Values per double-quantisation block (bitsandbytes uses 256). */
export const DOUBLE_QUANT_BLOCK = 256;

function linspaceF32(start: number, end: number, steps: number): number[] {
  // torch.linspace on CPU: the first half counts up from start, the second down from end.
  const f = Math.fround;
  const step = f((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from(
    { length: steps },
    (_, i) => i < half ? f(f(start) + f(step * i)) : f(f(end) - f(step * (steps - i - 1))),
  );
}

/**
 * bitsandbytes' signed 8-bit dynamic map (`create_dynamic_map(signed=True,
 * max_exponent_bits=7, total_bits=8)`): for each decade 10⁻⁶…10⁰ the
 * midpoints of 2ⁱ equal steps of [0.1, 1] (and their negatives), plus 0 and
 * 1, sorted. Computed in float32 like torch (values can differ from torch's
 * by one float32 ulp where torch's linspace rounds differently).
 */
export function dynamicMap(): Float32Array {
  const f = Math.fround;
  const data: number[] = [];
  const maxExponentBits = 7, nonSignBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const items = 2 ** (i + nonSignBits - maxExponentBits) + 1;
    const b = linspaceF32(0.1, 1, items);
    const decade = f(10 ** (-(maxExponentBits - 1) + i));
    for (let k = 0; k + 1 < items; k++) {
      const mean = f(f(b[k]! + b[k + 1]!) / 2);
      data.push(f(decade * mean), f(-decade * mean));
    }
  }
  data.push(0, 1);
  if (data.length !== 256) throw new Error(`dynamic map has ${data.length} values`);
  return Float32Array.from(data.sort((a, b) => a - b));
}

let cachedMap: Float32Array | undefined;
/** The dynamic map, computed once. */
export function dynamicMapCached(): Float32Array {
  return cachedMap ??= dynamicMap();
}

/** Index of the code nearest to `v` in the sorted `code` (ties go to the lower code). */
export function nearestCode(code: Float32Array, v: number): number {
  let lo = 0, hi = code.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return Math.abs(v - code[lo]!) <= Math.abs(code[hi]! - v) ? lo : hi;
}

/** The double-quantised form of a list of block scales. */
export interface DoubleQuantized {
  /** One 8-bit code per scale. */
  codes: Uint8Array;
  /** f32 absmax of each group of {@link DOUBLE_QUANT_BLOCK} centred scales. */
  scales: Float32Array;
  /** Mean of the original scales (added back on dequantisation). */
  offset: number;
}

/** Quantises NF4 block absmax values as bitsandbytes' `compress_statistics` does. */
export function doubleQuantize(absmax: Float32Array): DoubleQuantized {
  const code = dynamicMapCached();
  let sum = 0;
  for (const v of absmax) sum += v;
  const offset = Math.fround(sum / absmax.length);
  const groups = Math.ceil(absmax.length / DOUBLE_QUANT_BLOCK);
  const scales = new Float32Array(groups);
  const codes = new Uint8Array(absmax.length);
  for (let g = 0; g < groups; g++) {
    const end = Math.min(absmax.length, (g + 1) * DOUBLE_QUANT_BLOCK);
    let m = 0;
    for (let i = g * DOUBLE_QUANT_BLOCK; i < end; i++) {
      m = Math.max(m, Math.abs(Math.fround(absmax[i]! - offset)));
    }
    scales[g] = m;
    for (let i = g * DOUBLE_QUANT_BLOCK; i < end; i++) {
      const centred = Math.fround(absmax[i]! - offset);
      codes[i] = m === 0 ? nearestCode(code, 0) : nearestCode(code, centred / m);
    }
  }
  return { codes, scales, offset };
}

/** The scales a {@link DoubleQuantized} stands for (float64 reference). */
export function doubleDequantize(dq: DoubleQuantized): Float64Array {
  const code = dynamicMapCached();
  return Float64Array.from(
    dq.codes,
    (q, i) => code[q]! * dq.scales[Math.floor(i / DOUBLE_QUANT_BLOCK)]! + dq.offset,
  );
}
