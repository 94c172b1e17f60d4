/**
 * distill-for-retrieval's precomputed teacher embeddings
 * (`precomputed_embeddings_dir`): the teacher ran once beforehand
 * (`precompute_embeddings.py`) and training reads its embeddings instead of
 * running it.
 *
 * Layout, as upstream writes and its trainer reads it: under the base
 * directory, one directory per dataset, `<dataset>_fp16/` (tried first) or
 * `<dataset>_fp32/`, holding
 *
 * - `metadata.json`: `query_ids` and `corpus_ids` (the row order),
 *   `query_embeddings_shape` and `corpus_embeddings_shape` (`[rows, width]`),
 *   `dtype` (`float16`, the default, or `float32`), and optionally
 *   `query_instruction` (the prefix the queries were embedded with),
 *   `embedding_dim` (the teacher model's width) and `target_dim` (the width
 *   stored: a prefix of it, renormalised, for an MRL student);
 * - `queries.mmap` and `corpus.mmap`: raw row-major little-endian arrays
 *   (numpy memmaps) of those shapes and dtype.
 *
 * `<dataset>` is the last path component of `data.data_path` (upstream's
 * `datasets[].name`); the base directory may also be a dataset directory
 * itself. Queries and documents have separate id spaces, so a lookup says
 * which one it wants. Any mismatch stops with one sentence naming the file
 * and field.
 *
 * @example
 * ```ts ignore
 * const teacher = await loadPrecomputedTeacher("./cache/embedding", "nfcorpus", { queryInstruction: "" });
 * const rows = await teacher.embed([{ id: "q1", text: "…", kind: "query" }], 512);
 * ```
 *
 * @module
 */

import { basename, join } from "node:path";
import { f16ArrayToF32 } from "@irforge/model/safetensors";
import { InputError } from "@irforge/data/input-error";

/** A text to embed, with its id and which id space it belongs to. */
export interface KindedItem {
  /** Query or document id. */
  id: string;
  /** The text (unused: the embedding is looked up). */
  text: string;
  /** `query` or `passage`; precomputed tables need it (ids may repeat across the two). */
  kind?: "query" | "passage";
}

/** A teacher whose embeddings were computed beforehand. */
export interface PrecomputedTeacher {
  /** Width of the rows returned. */
  dim: number;
  /** The teacher model's own width (`embedding_dim`), when the metadata gives it. */
  modelDim: number | null;
  /** The directory read (`<base>/<dataset>_fp16`, …). */
  path: string;
  /** Rows of `items`, row-major. */
  embed(items: readonly KindedItem[], maxLength: number): Promise<Float32Array>;
  /** Nothing to free (host memory). */
  dispose(): void;
}

/** What the run expects of the table. */
export interface PrecomputedExpectations {
  /** The query instruction the run prefixes queries with (must equal the metadata's). */
  queryInstruction: string;
}

/** The dataset directory under `base` for `dataset` (upstream's fp16-then-fp32 order). */
export async function findPrecomputedDirectory(base: string, dataset: string): Promise<string> {
  if (await isFile(join(base, "metadata.json"))) return base;
  const name = basename(dataset.replace(/\/+$/, ""));
  for (const precision of ["fp16", "fp32"]) {
    const dir = join(base, `${name}_${precision}`);
    if (await isFile(join(dir, "metadata.json"))) return dir;
  }
  throw new InputError(
    { file: base, field: "model.precomputed_embeddings_dir" },
    `found neither ${join(base, `${name}_fp16`)} nor ${join(base, `${name}_fp32`)} with a ` +
      "metadata.json (distill-for-retrieval's precompute_embeddings.py layout), nor a " +
      "metadata.json in the directory itself",
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Loads the precomputed teacher embeddings of `dataset` under `base`. */
export async function loadPrecomputedTeacher(
  base: string,
  dataset: string,
  expect: PrecomputedExpectations,
): Promise<PrecomputedTeacher> {
  const dir = await findPrecomputedDirectory(base, dataset);
  const metaPath = join(dir, "metadata.json");
  const fail = (field: string, what: string): never => {
    throw new InputError({ file: metaPath, field }, what);
  };
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (e) {
    return fail("(file)", `not JSON: ${(e as Error).message}`);
  }
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    return fail("(file)", "expected a JSON object");
  }
  const dtype = meta.dtype ?? "float16";
  if (dtype !== "float16" && dtype !== "float32") {
    fail("dtype", `expected "float16" or "float32", got ${JSON.stringify(dtype)}`);
  }
  const idsOf = (field: string): string[] => {
    const v = meta[field];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      return fail(field, "expected an array of id strings");
    }
    return v as string[];
  };
  const shapeOf = (field: string): [number, number] => {
    const v = meta[field];
    if (!Array.isArray(v) || v.length !== 2 || v.some((x) => !Number.isInteger(x) || x < 0)) {
      return fail(field, `expected [rows, width], got ${JSON.stringify(v)}`);
    }
    return v as [number, number];
  };
  const queryIds = idsOf("query_ids"), corpusIds = idsOf("corpus_ids");
  const queryShape = shapeOf("query_embeddings_shape");
  const corpusShape = shapeOf("corpus_embeddings_shape");
  if (queryShape[0] !== queryIds.length) {
    fail(
      "query_embeddings_shape",
      `${queryShape[0]} rows, but query_ids has ${queryIds.length} ids`,
    );
  }
  if (corpusShape[0] !== corpusIds.length) {
    fail(
      "corpus_embeddings_shape",
      `${corpusShape[0]} rows, but corpus_ids has ${corpusIds.length} ids`,
    );
  }
  const dim = queryShape[1];
  if (corpusShape[1] !== dim) {
    fail("corpus_embeddings_shape", `width ${corpusShape[1]}, but the queries' is ${dim}`);
  }
  if (meta.target_dim !== undefined && meta.target_dim !== dim) {
    fail("target_dim", `${meta.target_dim}, but the stored rows have width ${dim}`);
  }
  const modelDim = meta.embedding_dim === undefined ? null : meta.embedding_dim;
  if (modelDim !== null && (!Number.isInteger(modelDim) || (modelDim as number) < dim)) {
    fail("embedding_dim", `expected an integer ≥ the stored width ${dim}`);
  }
  const instruction = meta.query_instruction ?? "";
  if (instruction !== expect.queryInstruction) {
    fail(
      "query_instruction",
      `the queries were embedded with ${JSON.stringify(instruction)}, but this run's ` +
        `query instruction is ${JSON.stringify(expect.queryInstruction)}`,
    );
  }
  const bytes = dtype === "float16" ? 2 : 4;
  const read = async (file: string, rows: number, field: string): Promise<Float32Array> => {
    const path = join(dir, file);
    let raw: Uint8Array;
    try {
      raw = await Deno.readFile(path);
    } catch (e) {
      throw new InputError({ file: path }, `cannot read it (${(e as Error).message})`);
    }
    const want = rows * dim * bytes;
    if (raw.byteLength !== want) {
      throw new InputError(
        { file: path },
        `${raw.byteLength} bytes, but ${field} [${rows}, ${dim}] of ${dtype} in ` +
          `${metaPath} needs ${want}`,
      );
    }
    const copy = raw.slice().buffer; // aligned
    return dtype === "float16" ? f16ArrayToF32(new Uint16Array(copy)) : new Float32Array(copy);
  };
  const queries = await read("queries.mmap", queryIds.length, "query_embeddings_shape");
  const corpus = await read("corpus.mmap", corpusIds.length, "corpus_embeddings_shape");
  const queryRow = new Map(queryIds.map((id, i) => [id, i]));
  const corpusRow = new Map(corpusIds.map((id, i) => [id, i]));
  return {
    dim,
    modelDim: modelDim as number | null,
    path: dir,
    // deno-lint-ignore require-await
    async embed(items) {
      const out = new Float32Array(items.length * dim);
      items.forEach((item, i) => {
        if (item.kind === undefined) {
          throw new Error(
            `precomputed teacher embeddings: "${item.id}" is neither query nor passage`,
          );
        }
        const [rows, table, file, field] = item.kind === "query"
          ? [queryRow, queries, "queries.mmap", "query_ids"]
          : [corpusRow, corpus, "corpus.mmap", "corpus_ids"];
        const r = rows.get(item.id);
        if (r === undefined) {
          throw new InputError(
            { file: metaPath, field },
            `no ${item.kind} "${item.id}" (${file} has no row for it)`,
          );
        }
        out.set(table.subarray(r * dim, (r + 1) * dim), i * dim);
      });
      return out;
    },
    dispose() {},
  };
}
