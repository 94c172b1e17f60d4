import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  bitsToF32,
  f16BitsToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBits,
  f64ToBf16Bits,
  f64ToF16Bits,
} from "./half.ts";

// Independent float64 reference: decode every finite non-negative 16-bit
// pattern from the IEEE formula, then round by searching the sorted table for
// the nearest value (ties to the even pattern). The value one ulp past the
// largest finite number stands for infinity, as IEEE 754 rounding prescribes.
interface Format {
  exponentBits: number;
  mantissaBits: number;
}
const half: Format = { exponentBits: 5, mantissaBits: 10 };
const brain: Format = { exponentBits: 8, mantissaBits: 7 };

function decode(bits: number, f: Format): number {
  const bias = 2 ** (f.exponentBits - 1) - 1;
  const sign = bits & (1 << (f.exponentBits + f.mantissaBits)) ? -1 : 1;
  const exponent = (bits >> f.mantissaBits) & (2 ** f.exponentBits - 1);
  const mantissa = bits & (2 ** f.mantissaBits - 1);
  if (exponent === 2 ** f.exponentBits - 1) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** (1 - bias - f.mantissaBits);
  return sign * (1 + mantissa / 2 ** f.mantissaBits) * 2 ** (exponent - bias);
}

function table(f: Format): { values: number[]; bits: number[] } {
  const infBits = (2 ** f.exponentBits - 1) * 2 ** f.mantissaBits;
  const values: number[] = [];
  const bits: number[] = [];
  for (let b = 0; b < infBits; b++) {
    values.push(decode(b, f));
    bits.push(b);
  }
  const bias = 2 ** (f.exponentBits - 1) - 1;
  values.push(2 ** (bias + 1)); // "next" value after the max finite: rounds to inf
  bits.push(infBits);
  return { values, bits };
}

function referenceRound(x: number, f: Format, t: { values: number[]; bits: number[] }): number {
  const signBit = 2 ** (f.exponentBits + f.mantissaBits);
  const infBits = (2 ** f.exponentBits - 1) * 2 ** f.mantissaBits;
  if (Number.isNaN(x)) return -1; // checked separately
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  const last = t.values.length - 1;
  if (a >= t.values[last]!) return sign | infBits;
  let lo = 0;
  let hi = last; // values[lo] <= a < values[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (t.values[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const below = a - t.values[lo]!;
  const above = t.values[hi]! - a;
  let pick: number;
  if (below < above) pick = lo;
  else if (above < below) pick = hi;
  else pick = t.bits[lo]! % 2 === 0 ? lo : hi;
  return sign | t.bits[pick]!;
}

function edgeValues(f: Format, t: { values: number[] }): number[] {
  const out = [
    0,
    -0,
    Infinity,
    -Infinity,
    1,
    -1,
    1e-45,
    3.4028234663852886e38,
    1e30,
    65504,
    65519.99,
    65520,
    65536,
    2 ** -24,
    2 ** -25,
    2 ** -25 * 1.0000001,
    2 ** -14,
    2 ** -126,
    2 ** -133,
    2 ** -134,
    1 / 3,
    Math.PI,
  ];
  // Every midpoint between neighbours (exact ties) and points just off them.
  for (let i = 0; i + 1 < t.values.length; i += i < 2200 || i > t.values.length - 2200 ? 1 : 97) {
    const mid = (t.values[i]! + t.values[i + 1]!) / 2;
    out.push(mid, -mid, t.values[i]!);
    out.push(mid * (1 + 2 ** -40), mid * (1 - 2 ** -40));
  }
  void f;
  return out;
}

function randomValues(count: number): number[] {
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const u = new Uint32Array([next(), next()]);
    out.push(new Float64Array(u.buffer)[0]!); // random float64 bit patterns
    out.push(bitsToF32(next())); // random float32 bit patterns
    out.push((next() / 2 ** 32 - 0.5) * 2 ** ((next() % 60) - 30)); // typical magnitudes
  }
  return out.filter((x) => !Number.isNaN(x));
}

Deno.test("half: f16 and bf16 decode match the IEEE formula for every pattern", () => {
  for (let bits = 0; bits < 65536; bits++) {
    const h = f16BitsToF32(bits);
    const hRef = decode(bits, half);
    if (Number.isNaN(hRef)) assert.ok(Number.isNaN(h), `f16 ${bits}`);
    else assert.ok(Object.is(h, Math.fround(hRef)) && h === hRef, `f16 ${bits}: ${h} vs ${hRef}`);
    const b = bf16BitsToF32(bits);
    const bRef = decode(bits, brain);
    if (Number.isNaN(bRef)) assert.ok(Number.isNaN(b), `bf16 ${bits}`);
    else assert.ok(Object.is(b, bRef), `bf16 ${bits}: ${b} vs ${bRef}`);
  }
});

Deno.test("half: f32→f16 and f64→f16 round to nearest even like the float64 reference", () => {
  const t = table(half);
  const values = [...edgeValues(half, t), ...randomValues(20000)];
  for (const x of values) {
    const expected64 = referenceRound(x, half, t);
    assert.equal(f64ToF16Bits(x), expected64, `f64 ${x}`);
    const x32 = Math.fround(x);
    assert.equal(f32BitsToF16Bits(f32ToBits(x32)), referenceRound(x32, half, t), `f32 ${x32}`);
  }
});

Deno.test("half: f32→bf16 and f64→bf16 round to nearest even like the float64 reference", () => {
  const t = table(brain);
  const values = [...edgeValues(brain, t), ...randomValues(20000)];
  for (const x of values) {
    assert.equal(f64ToBf16Bits(x), referenceRound(x, brain, t), `f64 ${x}`);
    const x32 = Math.fround(x);
    assert.equal(f32BitsToBf16Bits(f32ToBits(x32)), referenceRound(x32, brain, t), `f32 ${x32}`);
  }
});

Deno.test("half: NaN stays NaN, sign kept", () => {
  for (const bits of [0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xff800001]) {
    const h = f32BitsToF16Bits(bits);
    assert.ok(Number.isNaN(f16BitsToF32(h)), `f16 of ${bits.toString(16)}`);
    assert.equal(h >> 15, bits >>> 31);
    const b = f32BitsToBf16Bits(bits);
    assert.ok(Number.isNaN(bf16BitsToF32(b)), `bf16 of ${bits.toString(16)}`);
    assert.equal(b >> 15, bits >>> 31);
  }
  assert.ok(Number.isNaN(f16BitsToF32(f64ToF16Bits(NaN))));
  assert.ok(Number.isNaN(bf16BitsToF32(f64ToBf16Bits(NaN))));
});

Deno.test("half: double rounding is avoided for float64 sources", () => {
  // 1 + 2^-11 + 2^-40 rounds up to 1 + 2^-10 in f16, but via float32 it first becomes the tie
  // 1 + 2^-11, which then rounds to even (1.0).
  const x = 1 + 2 ** -11 + 2 ** -40;
  assert.equal(f64ToF16Bits(x), 0x3c01);
  assert.equal(f32BitsToF16Bits(f32ToBits(x)), 0x3c00);
});
