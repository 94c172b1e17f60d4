/**
 * "Bring your config": each upstream project's documented example, with only
 * model and data paths changed, is read by the train CLI, resolves to the
 * intended irforge configuration key by key, and trains two steps on the
 * shared tiny models.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  type Config,
  flagsConfig,
  parseAnyConfig,
  PHASE_SECTIONS,
  SECTIONS,
  splitUpstreamArgs,
} from "@irforge/trainer";
import { sharedPath, sharedPathOrSkip } from "@irforge/data";
import { f64ToF16Bits } from "@irforge/model/safetensors";
import { main } from "./main.ts";

function capture() {
  const out: string[] = [], err: string[] = [];
  return { out, err, log: (l: string) => out.push(l), error: (l: string) => err.push(l) };
}

/**
 * Every key of `config` equals `expected[path]` when listed there, else
 * irforge's default (phase keys: the training section's value).
 */
function assertResolved(config: Config, expected: Record<string, unknown>): void {
  for (const top of ["recipe", "name"] as const) {
    if (top in expected) assert.deepEqual(config[top], expected[top], top);
  }
  for (const [section, table] of Object.entries(SECTIONS)) {
    for (const [key, spec] of Object.entries(table)) {
      const path = `${section}.${key}`;
      const want = path in expected ? expected[path] : spec.default;
      const got = (config[section as keyof typeof SECTIONS] as Record<string, unknown>)[key];
      assert.deepEqual(got, want, path);
    }
  }
  for (const phase of PHASE_SECTIONS) {
    const values = config[phase];
    if (values === null) {
      assert.ok(!Object.keys(expected).some((k) => k.startsWith(`${phase}.`)), phase);
      continue;
    }
    for (const key of Object.keys(SECTIONS.training)) {
      const path = `${phase}.${key}`;
      const want = path in expected
        ? expected[path]
        : (config.training as Record<string, unknown>)[key];
      assert.deepEqual((values as Record<string, unknown>)[key], want, path);
    }
  }
  const known = new Set([
    "recipe",
    "name",
    ...Object.entries(SECTIONS).flatMap(([s, t]) => Object.keys(t).map((k) => `${s}.${k}`)),
    ...PHASE_SECTIONS.flatMap((p) => Object.keys(SECTIONS.training).map((k) => `${p}.${k}`)),
  ]);
  for (const path of Object.keys(expected)) assert.ok(known.has(path), `expected key ${path}`);
}

async function metricsSteps(runPath: string): Promise<number[]> {
  const text = await Deno.readTextFile(join(runPath, "metrics.jsonl"));
  return text.trim().split("\n").map((l) =>
    JSON.parse(l) as { step?: number; "train/loss"?: number }
  )
    .filter((r) => r["train/loss"] !== undefined).map((r) => r.step!);
}

/** BlockRank's training guide config (docs/TRAINING.md), model and data paths changed. */
function blockRankGuideConfig(model: string, data: string, output: string, auxLayer: number) {
  return `model:
  model_name_or_path: "${model}"
  use_blockrank: true
  attn_implementation: "default_blockrank" # or "sdpa_compiled_blockrank"

data:
  data_path: "${data}"
  num_documents: 30
  max_block_length: 160

training:
  output_dir: "${output}"
  num_train_epochs: 1
  per_device_train_batch_size: 1 # increase if memory allows
  gradient_accumulation_steps: 4
  learning_rate: 3.0e-6
  use_aux_loss: true
  aux_layer_idx: ${auxLayer} # for mistral-7b
  aux_loss_weight: 0.1
`;
}

/** Nine BlockRank JSONL records of 30 very short documents each (the answer is document 7). */
function blockRankJsonl(): string {
  const lines: string[] = [];
  for (let q = 0; q < 9; q++) {
    const documents = Array.from({ length: 30 }, (_, d) => ({
      doc_id: `${q}-${d}`,
      title: d === 7 ? "Answer" : "",
      text: d === 7 ? `cat ${q}` : `dog`,
    }));
    lines.push(JSON.stringify({
      query: `where did cat ${q} sit`,
      query_id: `q${q}`,
      documents,
      answer_ids: [`${q}-7`],
    }));
  }
  return lines.join("\n") + "\n";
}

Deno.test("dialect blockrank: the training guide's config resolves key by key and trains two steps", async () => {
  const model = sharedPathOrSkip("blockrank dialect run", "data", "stories260K");
  if (!model) return;
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "your_data.jsonl");
    await Deno.writeTextFile(data, blockRankJsonl());
    const output = join(dir, "outputs", "my-model");
    const path = join(dir, "my_config.yaml");
    // aux_layer_idx 20 is the guide's layer for 32-layer Mistral-7B; stories260K has 5.
    await Deno.writeTextFile(path, blockRankGuideConfig(model, data, output, 2));
    const { config, notes } = parseAnyConfig(await Deno.readTextFile(path), path);
    assertResolved(config, {
      recipe: "blockrank",
      name: null,
      "model.model_name_or_path": model,
      "model.use_blockrank": true,
      "model.attn_implementation": "blockrank",
      "model.use_lora": false,
      "data.data_path": data,
      "data.num_documents": 30,
      "data.max_block_length": 160,
      "data.train_test_split": 0.01,
      "training.eval_strategy": "steps",
      "training.output_dir": output,
      "training.num_train_epochs": 1,
      "training.per_device_train_batch_size": 1,
      "training.per_device_eval_batch_size": 1,
      "training.gradient_accumulation_steps": 4,
      "training.learning_rate": 3e-6,
      "training.weight_decay": 0.01,
      "training.warmup_ratio": 0.03,
      "training.lr_scheduler_type": "cosine",
      "training.logging_steps": 10,
      "training.save_steps": 100,
      "training.eval_steps": 100,
      "training.save_total_limit": 3,
      "training.save_strategy": "no",
      "training.gradient_checkpointing": true,
      "training.use_aux_loss": true,
      "training.aux_layer_idx": 2,
      "training.aux_loss_weight": 0.1,
      "training.aux_temperature": 0.1,
    });
    assert.ok(notes.some((n) => /default_blockrank.*fused block-sparse/.test(n)), notes.join("\n"));

    const c = capture();
    const printed = await main(["--config", path, "--print-config"], c.log, c.error);
    assert.equal(printed.code, 0, c.err.join("\n"));
    const text = c.out.join("\n");
    assert.match(text, /model\.attn_implementation → model\.attn_implementation: "blockrank"/);
    const reparsed = parseYaml(text) as { recipe: string; data: { train_test_split: number } };
    assert.equal(reparsed.recipe, "blockrank");
    assert.equal(reparsed.data.train_test_split, 0.01);

    const run = capture();
    const { code, result } = await main(["--config", path], run.log, run.error);
    assert.equal(code, 0, run.err.join("\n"));
    // 9 queries, 1 held out (BlockRank's 0.99 split), 8 / (1 × 4 accumulated) = 2 steps.
    assert.equal(result?.step, 2);
    assert.ok((await Deno.stat(join(result!.runPath, "metrics.jsonl"))).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dialect blockrank: unsupported values stop with one sentence each, at their lines", () => {
  const text = `model:
  model_name_or_path: m
  attn_implementation: flash_attention_2
  trust_remote_code: true
data:
  data_path: d.jsonl
  streaming: true
  num_documents: -1
training:
  optim: adafactor
  load_best_model_at_end: true
  some_typo: 1
`;
  assert.throws(() => parseAnyConfig(text, "b.yaml", { dialect: "blockrank" }), (e: Error) => {
    const m = e.message;
    assert.match(m, /b\.yaml:3 .*attn_implementation "flash_attention_2" is not supported/);
    assert.match(m, /b\.yaml:4 .*trust_remote_code is not supported/);
    assert.match(m, /b\.yaml:7 .*streaming is not supported/);
    assert.match(m, /b\.yaml:8 .*num_documents -1 \(every document\) is not supported/);
    assert.match(m, /b\.yaml:10 .*optim "adafactor" is not supported/);
    assert.match(m, /b\.yaml:11 .*load_best_model_at_end is not supported/);
    assert.match(m, /b\.yaml:12 .*unknown BlockRank training key "training\.some_typo"/);
    return true;
  });
});

/**
 * distill-for-retrieval's configs/quick_test.yaml as it is upstream; models, data and paths
 * changed. `cache` null leaves out its precomputed_embeddings_dir lines (a teacher model runs).
 */
function distillQuickTest(
  teacher: string,
  student: string,
  data: string,
  out: string,
  cache: string | null = null,
): string {
  const precomputed = () =>
    cache === null ? "" : `  # Pre-computed embeddings (required for faster training)
  # Format: {base_dir}/{dataset_name}_{precision}/
  # Example: ./cache/embedding/msmarco_fp16/
  precomputed_embeddings_dir: "${cache}"

`;
  return `# Quick test configuration for fast experimentation
query_instruction: "Instruct: Given a web search query, retrieve relevant passages that answer the query\\nQuery: "

model:
  teacher: "${teacher}"
  student: "${student}"
  teacher_dim: 64
  student_dim: 32
  projection_hidden_dim: 48
  use_projection: false

phase1:
${precomputed()}  datasets:
    - name: "${data}"
      max_samples: 1000
  batch_size: 64
  learning_rate: 2.0e-5
  warmup_steps: 100
  num_epochs: 1
  mse_weight: 0.0
  cosine_weight: 1.0
  max_length: 512
  gradient_accumulation_steps: 4

phase2:
${precomputed()}  datasets:
    - name: "${data}"
      max_samples: 1000
  batch_size: 1
  learning_rate: 5.0e-6
  warmup_steps: 50
  num_epochs: 1
  infonce_weight: 0.8
  mse_weight: 0.2
  temperature: 0.02
  max_length: 512
  num_negatives: 7
  gradient_accumulation_steps: 8
  train_router: false
  router_loss_weight: 0.1
  router_warmup_ratio: 0.3
  router_lr: 1.0e-4

training:
  skip_phase1: true
  skip_phase2: false
  save_to_artifacts: true

paths:
  output_dir: "${out}/checkpoints"
  artifacts_dir: "${out}/artifacts"
`;
}

/** A 16-query BEIR collection cut from SciFact (texts shortened so the run stays small). */
async function tinyBeir(dir: string): Promise<void> {
  const scifact = sharedPath("data", "scifact");
  const qrels = (await Deno.readTextFile(join(scifact, "qrels", "train.tsv"))).trim().split("\n")
    .slice(1).map((l) => l.split("\t"));
  const kept = qrels.filter((r, i, all) => all.findIndex((o) => o[0] === r[0]) === i).slice(0, 16);
  const qids = new Set(kept.map((r) => r[0]!));
  const docs = new Set(kept.map((r) => r[1]!));
  const shorten = (s: string) => s.split(/\s+/).slice(0, 12).join(" ");
  const corpus = (await Deno.readTextFile(join(scifact, "corpus.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l) as { _id: string; title: string; text: string });
  const chosen = corpus.filter((d) => docs.has(d._id));
  chosen.push(...corpus.filter((d) => !docs.has(d._id)).slice(0, 24));
  await Deno.mkdir(join(dir, "qrels"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "corpus.jsonl"),
    chosen.map((d) => JSON.stringify({ ...d, text: shorten(d.text) })).join("\n") + "\n",
  );
  const queries = (await Deno.readTextFile(join(scifact, "queries.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l) as { _id: string; text: string }).filter((q) => qids.has(q._id));
  await Deno.writeTextFile(
    join(dir, "queries.jsonl"),
    queries.map((q) => JSON.stringify({ ...q, text: shorten(q.text) })).join("\n") + "\n",
  );
  await Deno.writeTextFile(
    join(dir, "qrels", "train.tsv"),
    "query-id\tcorpus-id\tscore\n" + kept.map((r) => r.join("\t")).join("\n") + "\n",
  );
}

/**
 * What precompute_embeddings.py writes for an MRL student (use_projection: false): every query
 * (instruction prefixed) and document of the BEIR directory `data`, cut to `targetDim` of the
 * teacher's `teacherDim` and renormalised, as f16 rows in `<base>/<dataset>_fp16/`. The rows are
 * seeded random unit vectors: the run reads them, it does not care how a teacher made them.
 */
async function writePrecomputedCache(
  base: string,
  data: string,
  instruction: string,
  teacherDim: number,
  targetDim: number,
): Promise<void> {
  const ids = async (file: string) =>
    (await Deno.readTextFile(join(data, file))).trim().split("\n")
      .map((l) => (JSON.parse(l) as { _id: string })._id);
  const queryIds = await ids("queries.jsonl"), corpusIds = await ids("corpus.jsonl");
  let seed = 7;
  const rows = (n: number) => {
    const out = new Uint16Array(n * targetDim);
    for (let r = 0; r < n; r++) {
      const row = Array.from({ length: targetDim }, () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648 - 0.5;
      });
      const norm = Math.hypot(...row);
      row.forEach((v, k) => out[r * targetDim + k] = f64ToF16Bits(v / norm));
    }
    return new Uint8Array(out.buffer);
  };
  const dir = join(base, "beir_fp16");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, "queries.mmap"), rows(queryIds.length));
  await Deno.writeFile(join(dir, "corpus.mmap"), rows(corpusIds.length));
  await Deno.writeTextFile(
    join(dir, "metadata.json"),
    JSON.stringify({
      dataset: "beir",
      teacher_model: "infly/inf-retriever-v1",
      query_instruction: instruction,
      embedding_dim: teacherDim,
      target_dim: targetDim,
      use_projection: false,
      dtype: "float16",
      precision: "fp16",
      num_queries: queryIds.length,
      num_corpus: corpusIds.length,
      query_ids: queryIds,
      corpus_ids: corpusIds,
      query_embeddings_shape: [queryIds.length, targetDim],
      corpus_embeddings_shape: [corpusIds.length, targetDim],
    }),
  );
}

const QUICK_TEST_INSTRUCTION =
  "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ";

Deno.test("dialect distill: upstream's quick_test (precomputed teacher embeddings) resolves key by key, trains phase 2 for two steps, copies artifacts", async () => {
  if (!sharedPathOrSkip("distill dialect run", "data", "scifact")) return;
  // Upstream's teacher name stays: with precomputed embeddings it is never loaded.
  const teacher = "infly/inf-retriever-v1";
  const student = "random-init:packages/trainer/default/tiny-llama";
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "beir");
    await tinyBeir(data);
    const cache = join(dir, "cache", "embedding");
    await writePrecomputedCache(cache, data, QUICK_TEST_INSTRUCTION, 64, 32);
    const path = join(dir, "quick_test.yaml");
    await Deno.writeTextFile(path, distillQuickTest(teacher, student, data, dir, cache));
    const { config, notes } = parseAnyConfig(await Deno.readTextFile(path), path);
    const experiment = "distilled-32d-mrl-quick_test";
    assertResolved(config, {
      recipe: "distill",
      name: experiment,
      "model.model_name_or_path": student,
      "model.precomputed_embeddings_dir": cache,
      "model.teacher_dim": 64,
      "model.student_dim": 32,
      "model.teacher_prefix_dim": 32,
      "model.use_lora": false,
      "model.pooling": "mean",
      "model.normalize": true,
      "data.data_path": data,
      "data.query_instruction":
        "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
      "training.skip_phase1": true,
      "training.skip_phase2": false,
      "training.output_dir": `${dir}/checkpoints/${experiment}`,
      "training.artifacts_dir": `${dir}/artifacts/${experiment}`,
      "training.weight_decay": 0.01,
      "training.lr_scheduler_type": "linear",
      "phase1.max_samples": 1000,
      "phase1.per_device_train_batch_size": 64,
      "phase1.learning_rate": 2e-5,
      "phase1.warmup_steps": 100,
      "phase1.num_train_epochs": 1,
      "phase1.loss_options": { mse_weight: 0, cosine_weight: 1 },
      "phase1.max_length": 512,
      "phase1.gradient_accumulation_steps": 4,
      "phase2.max_samples": 1000,
      "phase2.per_device_train_batch_size": 1,
      "phase2.learning_rate": 5e-6,
      "phase2.warmup_steps": 50,
      "phase2.num_train_epochs": 1,
      "phase2.loss_options": { infonce_weight: 0.8, mse_weight: 0.2 },
      "phase2.temperature": 0.02,
      "phase2.max_length": 512,
      "phase2.num_negatives": 7,
      "phase2.gradient_accumulation_steps": 8,
    });
    assert.ok(notes.some((n) => /projection_hidden_dim: not used/.test(n)), notes.join("\n"));
    assert.ok(notes.some((n) => /router_lr: not used/.test(n)), notes.join("\n"));
    assert.ok(
      notes.some((n) => /model\.teacher: not loaded: .*precomputed_embeddings_dir/.test(n)),
      notes.join("\n"),
    );
    assert.ok(
      notes.some((n) => /phase1\.precomputed_embeddings_dir: not used: phase 1 is skipped/.test(n)),
      notes.join("\n"),
    );

    const run = capture();
    const { code } = await main(["--config", path], run.log, run.error);
    assert.equal(code, 0, run.err.join("\n") + run.out.join("\n"));
    // 16 queries / (1 × 8 accumulated) = 2 optimizer steps in phase 2; phase 1 skipped.
    const root = `${dir}/checkpoints/${experiment}`;
    assert.deepEqual(await metricsSteps(join(root, "phase2")), [2]);
    await assert.rejects(Deno.stat(join(root, "phase1")));
    const artifacts = `${dir}/artifacts/${experiment}`;
    assert.ok((await Deno.stat(join(artifacts, "model.safetensors"))).isFile);
    assert.ok((await Deno.stat(join(artifacts, "config.yaml"))).isFile);

    // A cache embedded with another instruction stops with one sentence naming file and field.
    const metadata = join(cache, "beir_fp16", "metadata.json");
    const meta = JSON.parse(await Deno.readTextFile(metadata));
    await Deno.writeTextFile(metadata, JSON.stringify({ ...meta, query_instruction: "" }));
    const bad = capture();
    const refused = await main(["--config", path], bad.log, bad.error);
    assert.equal(refused.code, 2);
    assert.match(
      bad.err.join("\n"),
      /beir_fp16\/metadata\.json \(field "query_instruction"\): the queries were embedded with "", but this run's query instruction is "Instruct: /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dialect distill: default.yaml's projection maps to the two-layer projection", () => {
  const text = distillQuickTest("t", "s", "beir", "/o").replace(
    "use_projection: false",
    "use_projection: true",
  )
    .replace("skip_phase1: true", "skip_phase1: false");
  const { config } = parseAnyConfig(text, "configs/default.yaml");
  assert.equal(config.name, "distilled-64d-default");
  assert.equal(config.model.projection_dim, 64);
  assert.equal(config.model.projection_hidden_dim, 48);
  assert.equal(config.model.teacher_prefix_dim, null);
  assert.throws(
    () => parseAnyConfig(text.replace("train_router: false", "train_router: true"), "d.yaml"),
    /train_router is not supported/,
  );
  // Without precomputed_embeddings_dir the teacher model runs; phases that both run must read
  // one table.
  assert.equal(config.model.teacher_model_name_or_path, "t");
  assert.equal(config.model.precomputed_embeddings_dir, null);
  const twoTables = distillQuickTest("t", "s", "beir", "/o", "c1")
    .replace("skip_phase1: true", "skip_phase1: false")
    .replace(/(phase2:\n(?:.*\n)*? {2}precomputed_embeddings_dir: )"c1"/, '$1"c2"');
  assert.throws(
    () => parseAnyConfig(twoTables, "d.yaml"),
    /phase2 reads teacher embeddings from "c2" but phase1 from "c1"/,
  );
});

/** qa-expert's train/README single-GPU command, model and data paths changed. */
function qaExpertCommand(model: string, train: string, validation: string, out: string): string[] {
  return `--recipe sft --model_name_or_path ${model} --train_path ${train} --validation_path ${validation}
    --model_type mistral --use_lora False --qlora False --bf16 True --output_dir ${out}
    --num_train_epochs 2 --per_device_train_batch_size 3 --per_device_eval_batch_size 4
    --gradient_accumulation_steps 10 --eval_accumulation_steps 1 --evaluation_strategy steps
    --eval_steps 40 --save_strategy epoch --save_steps 80 --save_total_limit 3
    --learning_rate 1.2e-5 --lr_scheduler_type cosine --logging_steps 1 --tf32 True
    --model_max_length 4096 --gradient_checkpointing True --packing True`.split(/\s+/);
}

/** Three multi-hop records in qa-expert's training format (very short texts). */
function qaExpertRecords(): string {
  const record = (i: number) => ({
    question: `cat ${i}?`,
    answer: "Ann",
    multihop: i !== 2,
    sub_questions: [
      { question: "who?", answer: "Ann", paragraph: "Ann.", long_answer: "Ann" },
      { question: "where?", answer: "Rome", paragraph: "Rome.", long_answer: "Rome" },
    ],
    final_answer: "Ann",
    tag: "test",
  });
  return JSON.stringify([0, 1, 2].map(record));
}

Deno.test("dialect qa-expert: the train_model command line resolves key by key and trains two steps", async () => {
  const model = sharedPathOrSkip("qa-expert dialect run", "data", "stories260K");
  if (!model) return;
  const dir = await Deno.makeTempDir();
  try {
    const train = join(dir, "train.json"), validation = join(dir, "validation.json");
    await Deno.writeTextFile(train, qaExpertRecords());
    await Deno.writeTextFile(validation, qaExpertRecords());
    const out = join(dir, "models", "mistral-qa_full");
    const args = qaExpertCommand(model, train, validation, out);
    const split = splitUpstreamArgs(args);
    const { config, notes } = flagsConfig(split.upstream!, split);
    assertResolved(config, {
      recipe: "sft",
      name: null,
      "model.model_name_or_path": model,
      "model.use_lora": false,
      "data.data_path": train,
      "data.eval_data_path": validation,
      "data.max_seq_length": 4096,
      "data.packing": true,
      "training.output_dir": out,
      "training.num_train_epochs": 2,
      "training.per_device_train_batch_size": 3,
      "training.per_device_eval_batch_size": 4,
      "training.gradient_accumulation_steps": 10,
      "training.eval_strategy": "steps",
      "training.eval_steps": 40,
      "training.save_strategy": "epoch",
      "training.save_steps": 80,
      "training.save_total_limit": 3,
      "training.learning_rate": 1.2e-5,
      "training.lr_scheduler_type": "cosine",
      "training.logging_steps": 1,
      "training.gradient_checkpointing": true,
    });
    assert.ok(notes.some((n) => /--bf16: bf16 mixed precision/.test(n)), notes.join("\n"));

    const run = capture();
    const { code, result } = await main(args, run.log, run.error);
    assert.equal(code, 0, run.err.join("\n"));
    // Three short records pack into one row: one step per epoch, two epochs.
    assert.equal(result?.step, 2);
    assert.deepEqual(await metricsSteps(result!.runPath), [1, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** RankLLM's training/README command, placeholders filled, model and data paths local. */
function rankLlmCommand(model: string, data: string, out: string): string[] {
  return `--model_name_or_path ${model} --train_dataset_path ${data} --num_train_epochs 2
    --seed 42 --per_device_train_batch_size 4 --gradient_accumulation_steps 16
    --num_warmup_steps 50 --gradient_checkpointing --output_dir ${out}
    --noisy_embedding_alpha 5 --objective generation`.split(/\s+/);
}

Deno.test("dialect rankllm: the train_rankllm.py command line resolves key by key and trains two steps", async () => {
  const model = sharedPathOrSkip("rankllm dialect run", "data", "stories260K");
  if (!model) return;
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "rank_zephyr_training_data.json");
    const records = [0, 1, 2].map((i) => ({
      id: `q${i}`,
      conversations: [
        { from: "system", value: "You rank passages by relevance." },
        {
          from: "human",
          value: `Query: cat ${i}\n[1] a dog ran\n[2] the cat ${i} sat\nRank them.`,
        },
        { from: "gpt", value: "[2] > [1]" },
      ],
    }));
    await Deno.writeTextFile(data, JSON.stringify(records));
    const out = join(dir, "models", "ranking", "RankZephyr");
    const args = rankLlmCommand(model, data, out);
    const split = splitUpstreamArgs(args);
    const { config } = flagsConfig(split.upstream!, split);
    assertResolved(config, {
      recipe: "sft",
      name: null,
      "model.model_name_or_path": model,
      "model.use_lora": false,
      "data.data_path": data,
      "training.num_train_epochs": 2,
      "training.seed": 42,
      "training.per_device_train_batch_size": 4,
      "training.gradient_accumulation_steps": 16,
      "training.warmup_steps": 50,
      "training.gradient_checkpointing": true,
      "training.output_dir": out,
      "training.noisy_embedding_alpha": 5,
      "training.learning_rate": 5e-6,
      "training.save_strategy": "epoch",
    });
    // The ranking objectives train the listwise recipe (next test); a bad one is refused.
    assert.equal(
      flagsConfig([...split.upstream!.slice(0, -1), "ranking"], split).config.recipe,
      "listwise",
    );
    assert.throws(
      () => flagsConfig([...split.upstream!.slice(0, -1), "rank"], split),
      /--objective "rank": expected generation, ranking or combined/,
    );

    const run = capture();
    const { code, result } = await main(args, run.log, run.error);
    assert.equal(code, 0, run.err.join("\n"));
    assert.equal(result?.step, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** FIRST's alpha training records: letter identifiers, the gpt turn a permutation of them. */
function alphaRecords(): unknown[] {
  return [0, 1, 2, 3].map((i) => ({
    id: `q${i}`,
    conversations: [
      { from: "system", value: "You rank passages by relevance." },
      {
        from: "human",
        value: `Query: cat ${i}\n[A] a dog ran\n[B] the cat ${i} sat\n[C] a bird\nRank them.`,
      },
      { from: "gpt", value: i % 2 ? "[B] > [C] > [A]" : "[B] > [A] > [C]" },
    ],
  }));
}

Deno.test("dialect rankllm: --objective ranking and combined (FIRST's flags) train the listwise recipe on the conversations file, two steps", async () => {
  const model = sharedPathOrSkip("rankllm dialect run", "data", "stories260K");
  if (!model) return;
  const dir = await Deno.makeTempDir();
  try {
    const data = join(dir, "rank_zephyr_training_data_alpha.json");
    await Deno.writeTextFile(data, JSON.stringify(alphaRecords()));
    const common = {
      recipe: "listwise",
      name: null,
      "model.model_name_or_path": model,
      "model.use_lora": false,
      "data.data_path": data,
      "training.seed": 42,
      "training.per_device_train_batch_size": 2,
      "training.gradient_accumulation_steps": 1,
      "training.num_train_epochs": 1,
      "training.warmup_steps": 0,
      "training.lr_scheduler_type": "cosine",
      "training.noisy_embedding_alpha": 5,
      "training.learning_rate": 5e-6,
      "training.save_strategy": "epoch",
    };
    const cases = [
      {
        // scripts/train_first_mistral.sh's objective flags.
        flags: "--objective combined --ranking_loss ranknet --weighted",
        expected: {
          "training.objective": "combined",
          "training.loss": "ranknet",
          "training.loss_options": { ranking_weight: 10, weighted: true },
        },
        parts: ["train/lm", "train/ranknet"],
      },
      {
        flags: "--objective combined --ranking_loss listnet",
        expected: {
          "training.objective": "combined",
          "training.loss": "listnet",
          "training.loss_options": { ranking_weight: 0.1 },
        },
        parts: ["train/lm", "train/listnet"],
      },
      {
        flags: "--objective ranking",
        expected: {
          "training.objective": "ranking",
          "training.loss": "lambdarank",
          "training.loss_options": { reduction: "mean" },
        },
        parts: [],
      },
    ];
    for (const { flags, expected, parts } of cases) {
      const out = join(dir, flags.replace(/\W+/g, "_"));
      const args = `--model_name_or_path ${model} --train_dataset_path ${data} --num_train_epochs 1
        --seed 42 --per_device_train_batch_size 2 --gradient_accumulation_steps 1
        --lr_scheduler_type cosine --num_warmup_steps 0 --output_dir ${out}
        --noisy_embedding_alpha 5 ${flags}`.split(/\s+/);
      const split = splitUpstreamArgs(args);
      const { config, notes } = flagsConfig(split.upstream!, split);
      assertResolved(config, { ...common, ...expected, "training.output_dir": out });
      assert.ok(
        notes.some((n) => /own identifier logits sorted and reassigned/.test(n)),
        notes.join("\n"),
      );
      const run = capture();
      const { code, result } = await main(args, run.log, run.error);
      assert.equal(code, 0, run.err.join("\n"));
      // Four records in batches of two: two steps.
      assert.equal(result?.step, 2);
      const records = (await Deno.readTextFile(join(result!.runPath, "metrics.jsonl"))).trim()
        .split("\n").map((l) => JSON.parse(l)).filter((r) => "train/loss" in r);
      assert.ok(records.length > 0 && records.every((r) => Number.isFinite(r["train/loss"])));
      for (const part of parts) assert.ok(part in records[0], `${part} logged`);
    }
    // A gpt turn without letter identifiers stops with a sentence naming file, record and field.
    await Deno.writeTextFile(
      data,
      JSON.stringify([alphaRecords()[0], {
        conversations: [
          { from: "system", value: "s" },
          { from: "human", value: "h" },
          { from: "gpt", value: "[2] > [1]" },
        ],
      }]),
    );
    const bad = capture();
    const refused = await main(
      `--model_name_or_path ${model} --train_dataset_path ${data} --objective ranking --output_dir ${
        join(dir, "bad")
      }`.split(/\s+/),
      bad.log,
      bad.error,
    );
    assert.notEqual(refused.code, 0);
    assert.match(
      bad.err.join("\n"),
      /rank_zephyr_training_data_alpha\.json \(field "\[1\]\.conversations\[2\]\.value"\): expected a ranking of letter identifiers/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
