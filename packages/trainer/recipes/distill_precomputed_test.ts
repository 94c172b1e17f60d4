import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { f16BitsToF32, f64ToF16Bits, writeSafetensors } from "@irforge/model/safetensors";
import { passageText } from "@irforge/data";
import { DEFAULT_DIR } from "../default/mod.ts";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";
import { loadTeacher, readDistillData } from "./distill.ts";
import { trainDistill } from "./distill_run.ts";
import { findPrecomputedDirectory, loadPrecomputedTeacher } from "./distill_precomputed.ts";

const TEACHER = `random-init:${join(DEFAULT_DIR, "tiny-llama")}`;
const quiet = { log: () => {}, progress: false, handleSignals: false } as const;

/** A distill run on the default collection; `teacher` is the model.* line giving the teacher. */
function config(dir: string, teacher: string, name: string): Config {
  // query_max_len = passage_max_len: a cache holds one row per text, whichever phase reads it.
  const data = join(DEFAULT_DIR, "data");
  return parseConfig(
    `recipe: distill
model:
  model_name_or_path: random-init:${join(DEFAULT_DIR, "tiny-llama")}
  ${teacher}
  use_lora: false
  pooling: mean
  normalize: true
data:
  data_path: ${data}/corpus.jsonl
  queries_path: ${data}/queries.jsonl
  qrels_path: ${data}/qrels/train.tsv
  query_max_len: 16
  passage_max_len: 16
training:
  output_dir: ${join(dir, name)}
  per_device_train_batch_size: 8
  learning_rate: 0.003
  temperature: 0.1
  logging_steps: 1
  eval_strategy: "no"
  save_strategy: "no"
  max_steps: 2
`,
    "precomputed-test.yaml",
  );
}

/** Writes upstream's layout: metadata.json, queries.mmap, corpus.mmap (f16 bits or f32). */
async function writeCache(
  dir: string,
  table: { queryIds: string[]; corpusIds: string[]; queries: Float32Array; corpus: Float32Array },
  dtype: "float16" | "float32",
  extra: Record<string, unknown> = {},
): Promise<void> {
  const dim = table.queries.length / table.queryIds.length;
  await Deno.mkdir(dir, { recursive: true });
  const bytes = (values: Float32Array) =>
    dtype === "float32"
      ? new Uint8Array(values.buffer.slice(0))
      : new Uint8Array(Uint16Array.from(values, (v) => f64ToF16Bits(v)).buffer);
  await Deno.writeFile(join(dir, "queries.mmap"), bytes(table.queries));
  await Deno.writeFile(join(dir, "corpus.mmap"), bytes(table.corpus));
  await Deno.writeTextFile(
    join(dir, "metadata.json"),
    JSON.stringify({
      dataset: "synthetic",
      query_instruction: "",
      embedding_dim: dim,
      target_dim: dim,
      dtype,
      query_ids: table.queryIds,
      corpus_ids: table.corpusIds,
      query_embeddings_shape: [table.queryIds.length, dim],
      corpus_embeddings_shape: [table.corpusIds.length, dim],
      ...extra,
    }),
  );
}

async function losses(path: string): Promise<number[]> {
  return (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r).map((r) => r["train/loss"]);
}

gpuTest(
  "distill: precomputed_embeddings_dir (distill-for-retrieval's cache) trains as the teacher that wrote it; f16 rows as their f32 values; mismatches name file and field",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const modelConfig = config(dir, `teacher_model_name_or_path: ${TEACHER}`, "model");
      const data = await readDistillData(modelConfig);
      // The teacher's rows for every query and document, as precompute_embeddings.py writes them.
      const teacher = (await loadTeacher(modelConfig))!;
      const queryIds = [...data.queries.keys()], corpusIds = [...data.corpus.keys()];
      const embedAll = async (items: { id: string; text: string }[], maxLength: number) => {
        const out = new Float32Array(items.length * teacher.dim);
        for (let i = 0; i < items.length; i += 64) {
          out.set(await teacher.embed(items.slice(i, i + 64), maxLength), i * teacher.dim);
        }
        return out;
      };
      // One max length for both: the cache has one row per text, whatever phase reads it.
      const queries = await embedAll(
        queryIds.map((id) => ({ id, text: data.queries.get(id)! })),
        16,
      );
      const corpus = await embedAll(
        corpusIds.map((id) => ({ id, text: passageText(data.corpus.get(id)!) })),
        16,
      );
      teacher.dispose();
      const table = { queryIds, corpusIds, queries, corpus };
      await writeCache(join(dir, "cache", "synthetic_fp32"), table, "float32");

      // 1. The fp32 cache trains exactly as the model teacher (both phases). query_max_len =
      //    passage_max_len, so the model teacher's rows equal the cache's in either phase.
      const cacheConfig = config(
        dir,
        `precomputed_embeddings_dir: ${join(dir, "cache", "synthetic_fp32")}`,
        "cache",
      );
      const fromModel = await trainDistill({ config: modelConfig, ...quiet });
      const fromCache = await trainDistill({ config: cacheConfig, ...quiet });
      assert.equal(fromCache.status, "finished", fromCache.phase2?.error?.message);
      for (const phase of ["phase1", "phase2"]) {
        const a = await losses(join(fromModel.runPath, phase));
        const b = await losses(join(fromCache.runPath, phase));
        assert.equal(a.length, 2);
        a.forEach((x, k) => assert.ok(Math.abs(x - b[k]!) <= 1e-5 * Math.abs(x), `${a} vs ${b}`));
      }

      // 2. An fp16 cache, found as <base>/<dataset>_fp16 (dataset: data_path's last component),
      //    trains as a .safetensors table of the same rows rounded to f16 (ids are distinct here).
      const round = (v: Float32Array) => v.map((x) => f16BitsToF32(f64ToF16Bits(x)));
      const base = join(dir, "base");
      await writeCache(join(base, "corpus.jsonl_fp16"), table, "float16");
      assert.equal(
        await findPrecomputedDirectory(base, join(DEFAULT_DIR, "data", "corpus.jsonl")),
        join(base, "corpus.jsonl_fp16"),
      );
      const tablePath = join(dir, "teacher.safetensors");
      const rows = new Float32Array(queries.length + corpus.length);
      rows.set(round(queries)), rows.set(round(corpus), queries.length);
      await writeSafetensors(
        tablePath,
        [["embeddings", {
          dtype: "F32",
          shape: [queryIds.length + corpusIds.length, teacher.dim],
          data: rows,
        }]],
        { metadata: { ids: JSON.stringify([...queryIds, ...corpusIds]) } },
      );
      const half = await trainDistill({
        config: config(dir, `precomputed_embeddings_dir: ${base}`, "half"),
        ...quiet,
      });
      const safetensors = await trainDistill({
        config: config(dir, `teacher_model_name_or_path: ${tablePath}`, "table"),
        ...quiet,
      });
      for (const phase of ["phase1", "phase2"]) {
        assert.deepEqual(
          await losses(join(half.runPath, phase)),
          await losses(join(safetensors.runPath, phase)),
        );
      }
      // The rounding is real: some f16 row differs from its f32 value.
      assert.ok(round(corpus).some((x, k) => x !== corpus[k]));

      // 3. Mismatches: one sentence naming the file and the field.
      const expect = { queryInstruction: "" };
      const broken = async (name: string, extra: Record<string, unknown>, dtype = "float32") => {
        const path = join(dir, "broken", name);
        await writeCache(path, table, dtype as "float32", extra);
        return path;
      };
      await assert.rejects(
        loadPrecomputedTeacher(join(dir, "nowhere"), "scifact", expect),
        /nowhere \(field "model\.precomputed_embeddings_dir"\): found neither .*scifact_fp16 nor .*scifact_fp32/,
      );
      await assert.rejects(
        loadPrecomputedTeacher(
          await broken("rows", { query_embeddings_shape: [3, teacher.dim] }),
          "x",
          expect,
        ),
        /rows\/metadata\.json \(field "query_embeddings_shape"\): 3 rows, but query_ids has \d+ ids/,
      );
      // f32 bytes under dtype float16: twice the size the shape needs.
      await assert.rejects(
        loadPrecomputedTeacher(await broken("size", { dtype: "float16" }), "x", expect),
        /size\/queries\.mmap: \d+ bytes, but query_embeddings_shape \[\d+, 32\] of float16 in .*metadata\.json needs \d+/,
      );
      await assert.rejects(
        loadPrecomputedTeacher(await broken("dtype", { dtype: "bfloat16" }), "x", expect),
        /dtype\/metadata\.json \(field "dtype"\): expected "float16" or "float32", got "bfloat16"/,
      );
      await assert.rejects(
        loadPrecomputedTeacher(
          await broken("instr", { query_instruction: "Query: " }),
          "x",
          expect,
        ),
        /instr\/metadata\.json \(field "query_instruction"\): the queries were embedded with "Query: ", but this run's query instruction is ""/,
      );
      const ok = await loadPrecomputedTeacher(await broken("ok", {}), "x", expect);
      await assert.rejects(
        ok.embed([{ id: "nope", text: "", kind: "passage" }], 16),
        /ok\/metadata\.json \(field "corpus_ids"\): no passage "nope"/,
      );
      // Queries and documents are separate id spaces: a document id is no query.
      await assert.rejects(
        ok.embed([{ id: corpusIds[0]!, text: "", kind: "query" }], 16),
        /field "query_ids"\): no query/,
      );
      assert.deepEqual(
        await ok.embed([{ id: corpusIds[1]!, text: "", kind: "passage" }], 16),
        corpus.slice(teacher.dim, 2 * teacher.dim),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
