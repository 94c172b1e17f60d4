/**
 * `deno task convert --format cranfield|cisi|npl|smart --in DIR --out DIR`:
 * converts a classic test collection to BEIR layout (`corpus.jsonl`,
 * `queries.jsonl`, `qrels/test.tsv`) and prints the counts written.
 *
 * File names are found in `--in` (e.g. `cran.all.1400`, `CISI.ALL`,
 * `cacm.all`, `doc-text.trec`); `--docs`, `--queries`, `--qrels` override.
 * The output directory is built under a temporary name and renamed when
 * complete; an existing non-empty `--out` is replaced only with `--force`,
 * and never when it holds an input.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { existsSync, readdirSync } from "node:fs";
import {
  type ClassicCollection,
  type ClassicFiles,
  emptyDocuments,
  readCranfield,
  readNpl,
  readSmart,
} from "../classic.ts";
import { writeBeir } from "../beir.ts";
import { InputError, SkipLog } from "../input_error.ts";
import { checkOutput, writeDirectoryAtomic } from "../safe_output.ts";

const usage =
  `usage: deno task convert --format cranfield|cisi|npl|smart --in DIR --out DIR [--docs FILE] [--queries FILE] [--qrels FILE] [--skip-bad] [--force]`;

/** Candidate file names per format and role, first match wins (case-insensitive). */
const candidates: Record<string, { documents: RegExp; queries: RegExp; qrels: RegExp }> = {
  cranfield: { documents: /^cran\.all/i, queries: /^cran\.qry$/i, qrels: /^cranqrel$/i },
  cisi: { documents: /^cisi\.all$/i, queries: /^cisi\.qry$/i, qrels: /^cisi\.rel$/i },
  npl: { documents: /^doc-text/i, queries: /^query-text/i, qrels: /^qrels$/i },
  smart: {
    documents: /\.all(\.\d+)?$/i,
    queries: /^(query\.text|.*\.qry)$/i,
    qrels: /^(qrels\.text|qrels|.*\.rel)$/i,
  },
};

function findFile(dir: string, pattern: RegExp, role: string, format: string): string {
  const match = readdirSync(dir).sort().find((name) => pattern.test(name));
  if (!match) {
    throw new Error(
      `no ${role} file matching ${pattern} in ${dir} for --format ${format}; pass --${role} FILE`,
    );
  }
  return join(dir, match);
}

/** Runs the converter on `args`; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      format: { type: "string" },
      in: { type: "string" },
      out: { type: "string" },
      docs: { type: "string" },
      queries: { type: "string" },
      qrels: { type: "string" },
      "skip-bad": { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const format = values.format;
  if (format !== undefined && !(format in candidates)) {
    console.error(
      `error: unknown --format "${format}"; the formats are ${Object.keys(candidates).join(", ")}`,
    );
    return 2;
  }
  if (!format || !values.in || !values.out) {
    console.error(`error: --format, --in and --out are required\n${usage}`);
    return 2;
  }
  if (!existsSync(values.in)) {
    console.error(`error: --in ${values.in} does not exist`);
    return 2;
  }
  const patterns = candidates[format]!;
  const skip = new SkipLog(values["skip-bad"] ?? false);
  try {
    const files: ClassicFiles = {
      documents: values.docs ?? findFile(values.in, patterns.documents, "docs", format),
      queries: values.queries ?? findFile(values.in, patterns.queries, "queries", format),
      qrels: values.qrels ?? findFile(values.in, patterns.qrels, "qrels", format),
    };
    await checkOutput(values.out, {
      inputs: [
        { flag: "--in", path: values.in },
        { flag: "--docs", path: files.documents },
        { flag: "--queries", path: files.queries },
        { flag: "--qrels", path: files.qrels },
      ],
      force: values.force,
    });
    console.log(`reading ${files.documents}, ${files.queries}, ${files.qrels}`);
    let collection: ClassicCollection;
    if (format === "cranfield") collection = await readCranfield(files, skip);
    else if (format === "npl") collection = await readNpl(files, skip);
    else collection = await readSmart(files, skip);
    const counts = await writeDirectoryAtomic(
      values.out,
      (tmp) => writeBeir(tmp, collection, "test"),
    );
    console.log(
      `wrote ${counts.documents} documents, ${counts.queries} queries, ${counts.qrels} qrels ` +
        `(${counts.judgedQueries} judged queries) to ${values.out}`,
    );
    const empty = emptyDocuments(collection.corpus);
    if (empty.length > 0) {
      console.log(
        `note: ${empty.length} document(s) have neither title nor text and were kept: ${
          empty.slice(0, 10).join(", ")
        }`,
      );
    }
    if (collection.droppedQrelLines > 0) {
      console.log(
        `dropped ${collection.droppedQrelLines} Cranfield "-1" qrel lines (one per query, not a grade); ` +
          `grades 1..5 were written as scores 5 - grade (higher = more relevant)`,
      );
    }
    const warning = skip.summary();
    if (warning) console.warn(warning);
    return 0;
  } catch (error) {
    if (error instanceof InputError) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    if (error instanceof Error && !(error instanceof TypeError)) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
