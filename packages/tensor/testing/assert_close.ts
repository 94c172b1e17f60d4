/**
 * `assertClose`: compares arrays by relative error max|a − b| / max|b| and
 * reports the worst index.
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";

/** Any numeric array. */
export type Numbers = ArrayLike<number>;

/** The worst absolute difference, its index and the relative error. */
export interface CloseReport {
  /** max|a − b| / max(max|b|, tiny). */
  relative: number;
  /** max|a − b|. */
  maxAbs: number;
  /** Index of the worst difference. */
  worst: number;
}

/** Measures how close `actual` is to `expected` (NaN anywhere = Infinity). */
export function relativeError(actual: Numbers, expected: Numbers): CloseReport {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `length ${actual.length} !== expected length ${expected.length}`,
    });
  }
  let maxAbs = 0, worst = -1, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, b = expected[i]!;
    scale = Math.max(scale, Math.abs(b));
    const d = Number.isNaN(a) !== Number.isNaN(b) ? Infinity : a === b ? 0 : Math.abs(a - b);
    if (d > maxAbs || worst < 0) {
      maxAbs = Math.max(d, maxAbs);
      if (d >= maxAbs) worst = i;
    }
  }
  const relative = maxAbs === 0 ? 0 : maxAbs / Math.max(scale, 1e-30);
  return { relative, maxAbs, worst };
}

/**
 * Throws unless max|actual − expected| / max|expected| ≤ `tol`; the message
 * names the worst index and both values.
 */
export function assertClose(
  actual: Numbers,
  expected: Numbers,
  tol: number,
  what = "values",
): void {
  const r = relativeError(actual, expected);
  if (!(r.relative <= tol)) {
    throw new AssertionError({
      message: `${what}: relative error ${r.relative.toExponential(3)} > ${tol} ` +
        `(worst index ${r.worst}: actual ${actual[r.worst]}, expected ${expected[r.worst]}, ` +
        `max|diff| ${r.maxAbs.toExponential(3)})`,
    });
  }
}
