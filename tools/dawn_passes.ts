/**
 * Parses `IRFORGE_TEST_DAWN`, the test passes `tools/run_tests.ts` runs under
 * Dawn after the main pass: one pass per non-empty line, each line
 * whitespace-separated `NAME=VALUE` settings for that pass's environment and
 * test paths (`!path` excludes one).
 *
 * @example Two passes, the first with narrower lavapipe vectors
 * ```ts
 * import { parseDawnPasses } from "./dawn_passes.ts";
 *
 * const passes = parseDawnPasses(
 *   "LP_NATIVE_VECTOR_WIDTH=128 packages/tensor !packages/tensor/lab\npackages/model",
 * );
 * // passes[0].env → { LP_NATIVE_VECTOR_WIDTH: "128" }
 * // passes[0].args → ["packages/tensor", "--ignore=packages/tensor/lab"]
 * ```
 *
 * @module
 */

/** One Dawn pass: extra environment and `deno test` path arguments. */
export interface DawnPass {
  /** Variables set for this pass only. */
  env: Record<string, string>;
  /** Paths and `--ignore=` arguments for `deno test`. */
  args: string[];
  /** The line as written, for the summary. */
  label: string;
}

const SETTING = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/**
 * The passes of `value` (see the module docs).
 *
 * @throws {Error} naming the line when a line has settings but no paths.
 */
export function parseDawnPasses(value: string | undefined): DawnPass[] {
  const passes: DawnPass[] = [];
  (value ?? "").split("\n").forEach((line, index) => {
    const tokens = line.trim().split(/\s+/).filter((t) => t !== "");
    if (tokens.length === 0) return;
    const env: Record<string, string> = {};
    const args: string[] = [];
    for (const token of tokens) {
      const setting = token.match(SETTING);
      if (setting) env[setting[1]!] = setting[2]!;
      else args.push(token.startsWith("!") ? `--ignore=${token.slice(1)}` : token);
    }
    if (!args.some((a) => !a.startsWith("--ignore="))) {
      throw new Error(`IRFORGE_TEST_DAWN line ${index + 1} names no test path: "${line.trim()}"`);
    }
    passes.push({ env, args, label: tokens.join(" ") });
  });
  return passes;
}
