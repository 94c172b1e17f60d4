/**
 * Seeded random numbers: xoshiro128** seeded through splitmix32, computed on
 * the CPU in plain TypeScript (so a seed gives the same values everywhere),
 * and tensor factories `rand` / `randn` built on it.
 *
 * @module
 */

import type { DType } from "./dtype.ts";
import { sizeOf, Tensor } from "./tensor.ts";

/**
 * One step of xoshiro128** (Blackman & Vigna): advances the four-word
 * `state` in place and returns the next unsigned 32-bit output. Shared by
 * every generator of the workspace (they differ in seeding and draws only).
 */
export function xoshiro128ssNext(state: Uint32Array): number {
  const s = state;
  const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
  const t = s[1]! << 9;
  s[2]! ^= s[0]!;
  s[3]! ^= s[1]!;
  s[1]! ^= s[2]!;
  s[0]! ^= s[3]!;
  s[2]! ^= t;
  s[3] = rotl(s[3]!, 11);
  return result;
}

/** xoshiro128** generator (Blackman & Vigna), seeded by splitmix32. */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  /** Seeds the state from a 32-bit integer via splitmix32. */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    return xoshiro128ssNext(this.#s);
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box–Muller, float64). */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * this.uniform();
    this.#spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Options of the random factories. */
export interface RandomOptions {
  /** Seed (required: every random tensor is reproducible). */
  seed: number;
  /** Element type (default f32). */
  dtype?: DType;
}

/** Float64 array of `n` normal values with `mean` and `std`. */
export function randnArray(n: number, seed: number, mean = 0, std = 1): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

/** Float64 array of `n` uniform values in [low, high). */
export function randArray(n: number, seed: number, low = 0, high = 1): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * rng.uniform();
  return out;
}

/** A tensor of normal values (mean 0, std 1 unless given). */
export function randn(
  shape: readonly number[],
  options: RandomOptions & { mean?: number; std?: number },
): Tensor {
  const data = randnArray(sizeOf(shape), options.seed, options.mean, options.std);
  return Tensor.fromArray(data, shape, options.dtype ?? "f32");
}

/** A tensor of uniform values in [low, high) (default [0, 1)). */
export function rand(
  shape: readonly number[],
  options: RandomOptions & { low?: number; high?: number },
): Tensor {
  const data = randArray(sizeOf(shape), options.seed, options.low, options.high);
  return Tensor.fromArray(data, shape, options.dtype ?? "f32");
}
