/**
 * Conversions between float32/float64 and the 16-bit formats (IEEE half
 * `f16`, and `bf16`). Half-precision values travel as `Uint16Array` bit
 * patterns (what GPU upload wants); every narrowing rounds to nearest, ties
 * to even, with subnormals, infinities and NaN handled.
 *
 * @module
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The 32 bits of `value` rounded to float32. */
export function f32ToBits(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
}

/** The float32 whose bits are `bits`. */
export function bitsToF32(bits: number): number {
  u32Scratch[0] = bits;
  return f32Scratch[0]!;
}

/** Float32 bits → bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Float32 bits → f16 bits, round to nearest even (overflow → ±inf, underflow → ±0 or subnormal). */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    // Inf stays inf; NaN keeps its top payload bits and is made quiet.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Result is subnormal (or zero): value = mantissa24 * 2^(exponent-150), half = k * 2^-24.
    if (halfExponent < -10) return sign; // below half the smallest subnormal
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to inf: the encoding makes that exact.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** Bf16 bits → float32 value (exact). */
export function bf16BitsToF32(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

let f16Table: Float32Array | undefined;

/** The 65,536 f16 values, built once (half → float32 is exact). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[bits] = mantissa === 0 ? sign * Infinity : NaN;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  f16Table = table;
  return table;
}

/** F16 bits → float32 value (exact). */
export function f16BitsToF32(bits: number): number {
  return f16ToF32Table()[bits & 0xffff]!;
}

/**
 * Rounds a float64 to a binary format with `exponentBits`/`mantissaBits`
 * (nearest, ties to even) and returns its bits. Used for float64 sources,
 * where going through float32 first would round twice.
 */
function roundNumberToBits(value: number, exponentBits: number, mantissaBits: number): number {
  const bias = (1 << (exponentBits - 1)) - 1;
  const infBits = ((1 << exponentBits) - 1) << mantissaBits;
  const signBit = 1 << (exponentBits + mantissaBits);
  if (Number.isNaN(value)) return infBits | (1 << (mantissaBits - 1));
  const sign = value < 0 || Object.is(value, -0) ? signBit : 0;
  const magnitude = Math.abs(value);
  if (magnitude === Infinity) return sign | infBits;
  const minNormalExponent = 1 - bias;
  let exponent = magnitude === 0 ? minNormalExponent : Math.floor(Math.log2(magnitude));
  // log2 may be off by one near powers of two.
  if (magnitude !== 0 && 2 ** exponent > magnitude) exponent--;
  if (magnitude !== 0 && 2 ** (exponent + 1) <= magnitude) exponent++;
  if (exponent < minNormalExponent) exponent = minNormalExponent; // subnormal: fixed scale
  // Scaling by a power of two is exact in float64.
  const scaled = magnitude * 2 ** (mantissaBits - exponent);
  let integer = Math.floor(scaled);
  const fraction = scaled - integer;
  if (fraction > 0.5 || (fraction === 0.5 && integer % 2 === 1)) integer++;
  // `integer` counts units of the last place at `exponent`; normal numbers hold the hidden bit.
  let biased = exponent + bias;
  if (integer >= 2 ** (mantissaBits + 1)) {
    integer /= 2; // rounding carried into a new binade (exact: integer is even here)
    biased++;
  }
  if (integer < 2 ** mantissaBits) return sign | integer; // subnormal or zero
  if (biased >= (1 << exponentBits) - 1) return sign | infBits;
  return sign | (biased << mantissaBits) | (integer - 2 ** mantissaBits);
}

/** Float64 → f16 bits, rounded once (nearest even). */
export function f64ToF16Bits(value: number): number {
  return roundNumberToBits(value, 5, 10);
}

/** Float64 → bf16 bits, rounded once (nearest even). */
export function f64ToBf16Bits(value: number): number {
  return roundNumberToBits(value, 8, 7);
}

/** Converts float32 values to f16 bit patterns. */
export function f32ArrayToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Converts float32 values to bf16 bit patterns. */
export function f32ArrayToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

/** Converts f16 bit patterns to float32 values (exact). */
export function f16ArrayToF32(halves: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  return out;
}

/** Converts bf16 bit patterns to float32 values (exact). */
export function bf16ArrayToF32(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) outBits[i] = halves[i]! << 16;
  return out;
}

/** Converts bf16 bit patterns to f16 bit patterns (bf16 → f32 is exact, so this rounds once). */
export function bf16ArrayToF16(halves: Uint16Array): Uint16Array {
  const out = new Uint16Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = f32BitsToF16Bits(halves[i]! << 16);
  return out;
}

/** Converts float64 values to float32 (Math.fround rounds to nearest even). */
export function f64ArrayToF32(values: Float64Array): Float32Array {
  return Float32Array.from(values);
}

/** Converts float64 values to f16 bit patterns, rounding once. */
export function f64ArrayToF16(values: Float64Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f64ToF16Bits(values[i]!);
  return out;
}

/** Converts float64 values to bf16 bit patterns, rounding once. */
export function f64ArrayToBf16(values: Float64Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f64ToBf16Bits(values[i]!);
  return out;
}
