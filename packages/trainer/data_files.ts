/**
 * Before any model loads, every data file a configuration points to must
 * exist; a missing one is named together with the key that points to it (and,
 * for a candidate run, the command that makes one).
 *
 * @module
 */

import type { Config } from "./config/schema.ts";

/** The `data` keys that name files or directories. */
export const DATA_PATH_KEYS = [
  "data_path",
  "corpus_path",
  "queries_path",
  "qrels_path",
  "run_path",
  "eval_data_path",
  "eval_qrels_path",
] as const;

/**
 * One sentence naming the first missing data file, its key and the config
 * file (`configFile`, when there is one), or `undefined` when all exist.
 */
export async function missingDataFile(
  config: Config,
  configFile?: string,
): Promise<string | undefined> {
  const data = config.data as unknown as Record<string, unknown>;
  for (const key of DATA_PATH_KEYS) {
    const path = data[key];
    if (typeof path !== "string" || path === "") continue;
    try {
      await Deno.stat(path);
      continue;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const where = configFile ? ` in ${configFile}` : "";
    let sentence = `data.${key}${where} points to ${path}, which does not exist`;
    if (key === "run_path") {
      const corpus = typeof data.corpus_path === "string" ? data.corpus_path : "corpus.jsonl";
      const queries = typeof data.queries_path === "string" ? data.queries_path : "queries.jsonl";
      sentence += `; make the candidate run with deno task bm25 --corpus ${corpus} ` +
        `--queries ${queries} --out ${path} --k 20`;
    }
    return sentence;
  }
  return undefined;
}
