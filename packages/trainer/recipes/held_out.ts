/**
 * A seeded train/held-out split of training records, for recipes that
 * evaluate on part of their training file (`data.train_test_split`).
 *
 * @module
 */

import { epochPermutation } from "../loop.ts";

/** Splits `items` into (train, held-out) with a seeded shuffle; `fraction` 0 holds out none. */
export function splitHeldOut<T>(items: readonly T[], fraction: number, seed: number): [T[], T[]] {
  if (fraction <= 0) return [[...items], []];
  const order = epochPermutation(items.length, seed, 0);
  const held = Math.max(1, Math.round(items.length * fraction));
  if (held >= items.length) {
    throw new Error(
      `data.train_test_split ${fraction} leaves no training examples out of ${items.length}`,
    );
  }
  const heldSet = new Set(order.slice(0, held));
  return [
    items.filter((_, i) => !heldSet.has(i)),
    items.filter((_, i) => heldSet.has(i)),
  ];
}
