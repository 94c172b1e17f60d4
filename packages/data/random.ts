/**
 * Seeded, stateless randomness: every draw is a pure function of
 * `(seed, epoch, index)`, so a dataset item is the same whichever worker
 * builds it and in whatever order.
 *
 * @module
 */

/** A source of uniform floats in [0, 1). */
export type Random = () => number;

/** Mixes 32-bit integers into one (murmur3 finaliser per key). */
function mix(keys: number[]): number {
  let h = 0x9e3779b9;
  for (const key of keys) {
    let k = Math.imul(key | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator (mulberry32) seeded by the given keys, e.g. `(seed, epoch, index)`. */
export function seededRandom(...keys: number[]): Random {
  let state = mix(keys);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** Shuffles `items` in place (Fisher–Yates) and returns it. */
export function shuffleInPlace<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** `k` distinct items of `items` (all of them, shuffled, when `k ≥ length`). */
export function sampleWithoutReplacement<T>(random: Random, items: readonly T[], k: number): T[] {
  const copy = items.slice();
  const n = Math.min(k, copy.length);
  // Partial Fisher–Yates: only the first n positions are drawn.
  for (let i = 0; i < n; i++) {
    const j = i + randomInt(random, copy.length - i);
    const tmp = copy[i]!;
    copy[i] = copy[j]!;
    copy[j] = tmp;
  }
  return copy.slice(0, n);
}
