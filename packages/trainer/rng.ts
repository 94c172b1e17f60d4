/**
 * A seeded, splittable, serialisable pseudo-random generator (xoshiro128**,
 * Blackman & Vigna) so that a resumed run draws exactly the numbers the
 * interrupted one would have: the whole state is four 32-bit words that go
 * into `trainer_state.json`.
 *
 * @module
 */

import { xoshiro128ssNext } from "@irforge/tensor";

/** The serialised state of an {@linkcode Rng}: JSON-safe. */
export interface RngState {
  /** Always `"xoshiro128**"`; kept so that a future change of algorithm is detected. */
  algorithm: "xoshiro128**";
  /** The four state words, unsigned 32-bit integers, not all zero. */
  s: [number, number, number, number];
}

const TWO_POW_32 = 4294967296;

/** A seeded PRNG with uniform, normal, integer and shuffle draws. */
export class Rng {
  #s: Uint32Array;

  private constructor(s: Uint32Array) {
    this.#s = s;
  }

  /**
   * A generator seeded from a non-negative safe integer. The state is filled
   * by a SplitMix32-style hash so that nearby seeds give unrelated streams.
   */
  static seeded(seed: number): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    }
    let counter = (seed >>> 0) ^ mix32(Math.floor(seed / TWO_POW_32) >>> 0);
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      counter = (counter + 0x9e3779b9) >>> 0;
      s[i] = mix32(counter);
    }
    if (s.every((w) => w === 0)) s[0] = 1; // the all-zero state is a fixed point
    return new Rng(s);
  }

  /** A generator continuing exactly from a saved {@linkcode RngState}. */
  static fromState(state: RngState): Rng {
    if (state?.algorithm !== "xoshiro128**") {
      throw new Error(`unsupported RNG algorithm ${JSON.stringify(state?.algorithm)}`);
    }
    const words = state.s;
    if (
      !Array.isArray(words) || words.length !== 4 ||
      !words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)
    ) {
      throw new Error(
        `RNG state must be four unsigned 32-bit integers, got ${JSON.stringify(words)}`,
      );
    }
    if (words.every((w) => w === 0)) throw new Error("RNG state must not be all zero");
    return new Rng(Uint32Array.from(words));
  }

  /** The current state; `Rng.fromState(rng.state())` continues identically. */
  state(): RngState {
    const [a, b, c, d] = this.#s;
    return { algorithm: "xoshiro128**", s: [a!, b!, c!, d!] };
  }

  /** The next raw output: an unsigned 32-bit integer. */
  next(): number {
    return xoshiro128ssNext(this.#s);
  }

  /** A double uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const high = this.next() >>> 5; // 27 bits
    const low = this.next() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** A normal draw (Box–Muller; uses two uniforms per call, no cached spare). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** An integer uniform in [0, n), without modulo bias; `n` at most 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`int(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    // Reject the top partial block so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.next();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i]!;
      array[i] = array[j]!;
      array[j] = tmp;
    }
    return array;
  }

  /**
   * A new, independent generator derived from this one (advancing this one by
   * four outputs): give each consumer (data order, dropout, …) its own stream.
   */
  split(): Rng {
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) s[i] = mix32(this.next() ^ (0x632be5ab * (i + 1)));
    if (s.every((w) => w === 0)) s[0] = 1;
    return new Rng(s);
  }
}

/** A 32-bit integer hash with good avalanche (Wellons' lowbias32). */
function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x21f0aaad) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x735a2d97) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}
