/**
 * Trove's Python option names (`group_size`, `min_score`, …) accepted next to
 * irforge's camelCase ones, so code ported from Trove keeps its spelling.
 * Each options type has its own normaliser that calls {@link troveSpelling}.
 *
 * @module
 */

/** Pairs of Trove (snake_case) name → irforge (camelCase) name. */
export type TroveNamePairs = Readonly<Record<string, string>>;

function describe(value: unknown): string {
  return typeof value === "function" ? "a function" : JSON.stringify(value) ?? String(value);
}

/**
 * Returns a copy of `options` with each Trove name moved to its irforge
 * name. Giving both names with different values is a `TypeError` naming
 * both; giving both with the same value is accepted.
 *
 * @example
 * ```ts
 * import { troveSpelling } from "@irforge/data";
 * const options = troveSpelling({ group_size: 4 }, { group_size: "groupSize" }, "BinaryDataset");
 * // options is { groupSize: 4 }
 * ```
 */
export function troveSpelling<T>(options: object, pairs: TroveNamePairs, what: string): T {
  const out: Record<string, unknown> = { ...options };
  for (const [trove, irforge] of Object.entries(pairs)) {
    const given = out[trove];
    delete out[trove];
    if (given === undefined) continue;
    const own = out[irforge];
    if (own !== undefined && !Object.is(own, given)) {
      throw new TypeError(
        `${what} options give "${irforge}" (${describe(own)}) and Trove's "${trove}" ` +
          `(${describe(given)}) with different values; give only one of them.`,
      );
    }
    out[irforge] = given;
  }
  return out as T;
}
