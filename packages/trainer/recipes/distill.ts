/**
 * Two-phase embedding distillation, teacher → student.
 *
 * - Phase 1 (`distill_phase1`): student embeddings of corpus passages and
 *   training queries regress onto the teacher's: MSE + (1 − cosine).
 * - Phase 2 (`distill_phase2`): (query, positive, hard negative) triplets
 *   (`TripletDataset`; negatives from `run_path`, else random corpus
 *   documents): InfoNCE over in-batch and hard negatives + MSE to the
 *   teacher. Without a teacher (only `run_path`), phase 2 is plain InfoNCE
 *   and phase 1 must be skipped.
 *
 * Teacher (`model.teacher_model_name_or_path`): a model directory (or
 * `random-init:<dir>`) run under `noGrad` with the student's pooling, or a
 * `.safetensors` file of precomputed embeddings: tensor `embeddings`
 * `[N, d]` and metadata `ids`, a JSON array of the N query/document ids.
 * `model.projection_dim` adds a learned linear map `projection.weight`
 * `[projection_dim, hidden]` from the student to the teacher's width (it
 * must equal the teacher's); `model.matryoshka_dims` wraps each phase's
 * loss in `matryoshka` over those prefix widths. Embeddings are pooled
 * (`model.pooling`), projected, then L2-normalised when `model.normalize`.
 *
 * `trainDistill` runs phase 1 then phase 2 on the same student, each with
 * its `training` overrides (`phase1:`/`phase2:`), into one run directory
 * that holds one complete run directory per phase: `<run>/phase1/` and
 * `<run>/phase2/` (own `run.json`, `metrics.jsonl`, `eval/`,
 * `checkpoints/`), so every phase has its own schedule, step counter and
 * exact resume. Evaluation is exact top-100 retrieval (GPU top-k) of the
 * student on `eval_qrels_path`.
 *
 * With `model.use_lora` the student's adapter (and the projection) train:
 * the adapter's dropout is seeded from the trainer's RNG per micro-batch (a
 * resumed run draws the same masks) and off during evaluation; checkpoints
 * then hold the adapter in peft's format (`adapter_config.json` +
 * `adapter_model.safetensors`) and `model.safetensors` holds
 * `projection.weight` alone (none without a projection); without LoRA
 * `model.safetensors` holds the model and the projection. A model teacher
 * is frozen and runs without an adapter. A micro-batch's uploaded inputs
 * stay alive until the next micro-batch, evaluation or dispose, since
 * backward re-reads them when `training.gradient_checkpointing` is on.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { concat, l2Normalize, matmul, noGrad, parameter, type Tensor, tidy } from "@irforge/tensor";
import type { CausalLM, ModelInputs } from "@irforge/model";
import { disposeInputs, poolHidden, uploadInputs } from "@irforge/model";
import { SafetensorsFile } from "@irforge/model/safetensors";
import {
  BinaryDataset,
  collate,
  type CollatedBatch,
  type Corpus,
  encodeText,
  materializeQrels,
  passageText,
  type Qrels,
  type Queries,
  readRun,
  type TextTokenizer,
  TripletDataset,
} from "@irforge/data";
import { createLoss, type Loss } from "@irforge/losses";
import { evaluateRetriever } from "@irforge/eval";
import type { Config, TrainingConfig } from "../config/schema.ts";
import type { EvalOutcome, TrainingTask } from "../loop.ts";
import { Rng } from "../rng.ts";
import { type LoadedModel, loadModel } from "./model_setup.ts";
import {
  countTokens,
  microBatchIndices,
  type ModelSession,
  withModelSession,
} from "./model_session.ts";
import { evaluationToOutcome, retrievalEvalOptions } from "./metrics.ts";
import { poolingBatch, tokenBatchOf } from "./batches.ts";
import { readBeirFiles } from "./retrieval_data.ts";
import { exactTopKGpu } from "./top_k.ts";
import { type ProjectionMlp, projectionMlp } from "./projection_mlp.ts";
import { phasedEvalProgress } from "../eval_progress.ts";
import type { Collective } from "../distributed/collective.ts";
import { shardedEncoder } from "../distributed/gather.ts";
import { gatherPhase2Batch } from "./distill_parallel.ts";
import { loadPrecomputedTeacher } from "./distill_precomputed.ts";

/** Name of the projection in `model.safetensors`. */
export const PROJECTION = "projection.weight";

/** A text with the id it has in the corpus or the queries. */
export interface IdText {
  /** Document or query id. */
  id: string;
  /** The text embedded. */
  text: string;
  /** Which id space `id` is in (precomputed teacher tables keep queries and documents apart). */
  kind?: "query" | "passage";
}

/** Where teacher embeddings come from. */
export interface Teacher {
  /** Embedding width. */
  dim: number;
  /** The teacher model's own width when `dim` is a stored prefix of it (precomputed MRL rows). */
  modelDim?: number | null;
  /** Teacher embeddings of `items`, row-major. */
  embed(items: readonly IdText[], maxLength: number): Promise<Float32Array>;
  /** Frees the teacher model, if any. */
  dispose(): void;
}

/** The data distillation reads. */
export interface DistillData {
  /** Passages by id. */
  corpus: Corpus;
  /** Training queries by id. */
  queries: Queries;
  /** Training judgments. */
  trainQrels: Qrels;
  /** Evaluation queries (null: no evaluation data). */
  evalQueries: Queries | null;
  /** Evaluation judgments, capped at `max_eval_samples` queries (null: none). */
  evalQrels: Qrels | null;
}

/** Reads corpus (`corpus_path`, or `data_path`: a corpus `.jsonl` or a BEIR folder), queries, qrels. */
export function readDistillData(config: Config): Promise<DistillData> {
  const d = config.data;
  const dir = d.data_path && !d.data_path.endsWith(".jsonl") ? d.data_path : null;
  return readBeirFiles(config, {
    corpus: d.corpus_path ?? (dir ? join(dir, "corpus.jsonl") : d.data_path),
    queries: d.queries_path ?? (dir ? join(dir, "queries.jsonl") : null),
    qrels: d.qrels_path ?? (dir ? join(dir, "qrels", "train.tsv") : null),
  }, "distillation needs a corpus, queries_path and qrels_path");
}

/** A model (student or teacher) that turns texts into embeddings. */
export interface Encoder {
  model: CausalLM;
  tokenizer: TextTokenizer;
}

function collateTexts(tokenizer: TextTokenizer, texts: readonly string[], maxLength: number) {
  return collate(
    texts.map((text) => {
      const ids = encodeText(tokenizer, text, { maxLength, appendEos: true, prependBos: true });
      return { inputIds: ids, labels: ids.map(() => -100) };
    }),
    { padId: tokenizer.padId, padToMultipleOf: 8 },
  );
}

/**
 * Final hidden states pooled, `[rows, hidden]` (no normalisation). The
 * uploaded inputs are freed on return, unless `live` is given: then they are
 * pushed onto it and the caller frees them (`disposeInputs`) after backward,
 * which re-reads them when layers are checkpointed.
 */
export function pooledHidden(
  model: CausalLM,
  batch: CollatedBatch,
  config: Config,
  live?: ModelInputs[],
): Tensor {
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  live?.push(inputs);
  try {
    const { hidden } = model.forward(inputs, { output: "hidden" });
    return tidy(() => poolHidden(hidden!, poolingBatch(batch), config.model.pooling, false));
  } finally {
    if (!live) disposeInputs(inputs);
  }
}

/**
 * Loads the teacher of `config` (model directory, `random-init:`, or
 * precomputed `.safetensors`), checks `model.teacher_dim`, and with
 * `model.teacher_prefix_dim` keeps the first N values of each embedding
 * (not renormalised: an MRL teacher's prefix, as distill-for-retrieval uses it).
 */
export async function loadTeacher(config: Config): Promise<Teacher | null> {
  const teacher = await loadFullTeacher(config);
  if (teacher === null) return null;
  const { teacher_dim: expected, teacher_prefix_dim: prefix } = config.model;
  const fullDim = teacher.modelDim ?? teacher.dim;
  if (expected !== null && expected !== fullDim) {
    teacher.dispose();
    throw new Error(
      `model.teacher_dim ${expected}, but the teacher's embeddings have ${fullDim} values`,
    );
  }
  if (prefix === null || prefix === teacher.dim) return teacher;
  if (prefix > teacher.dim) {
    teacher.dispose();
    throw new Error(
      `model.teacher_prefix_dim ${prefix} is wider than the teacher's embeddings (${teacher.dim})`,
    );
  }
  return {
    dim: prefix,
    async embed(items, maxLength) {
      const full = await teacher.embed(items, maxLength);
      const out = new Float32Array(items.length * prefix);
      for (let i = 0; i < items.length; i++) {
        out.set(full.subarray(i * teacher.dim, i * teacher.dim + prefix), i * prefix);
      }
      return out;
    },
    dispose: () => teacher.dispose(),
  };
}

async function loadFullTeacher(config: Config): Promise<Teacher | null> {
  const precomputed = config.model.precomputed_embeddings_dir;
  if (precomputed !== null) {
    return await loadPrecomputedTeacher(
      precomputed,
      config.data.data_path ?? config.data.corpus_path ?? "",
      { queryInstruction: config.data.query_instruction ?? "" },
    );
  }
  const source = config.model.teacher_model_name_or_path;
  if (source === null) return null;
  if (source.endsWith(".safetensors")) {
    const file = await SafetensorsFile.open(resolve(source));
    try {
      const info = file.info("embeddings");
      if (info.shape.length !== 2) {
        throw new Error(`${source}: "embeddings" must be [N, d], found [${info.shape}]`);
      }
      const [n, dim] = info.shape as [number, number];
      const ids = JSON.parse(file.metadata?.ids ?? "null") as unknown;
      if (!Array.isArray(ids) || ids.length !== n || ids.some((x) => typeof x !== "string")) {
        throw new Error(`${source}: metadata "ids" must be a JSON array of ${n} id strings`);
      }
      const table = await file.read("embeddings", { as: "f32" });
      const row = new Map((ids as string[]).map((id, i) => [id, i]));
      return {
        dim,
        embed(items) {
          const out = new Float32Array(items.length * dim);
          items.forEach((item, i) => {
            const r = row.get(item.id);
            if (r === undefined) {
              throw new Error(`${source}: no teacher embedding for "${item.id}"`);
            }
            out.set(table.subarray(r * dim, (r + 1) * dim), i * dim);
          });
          return Promise.resolve(out);
        },
        dispose() {},
      };
    } finally {
      file.close();
    }
  }
  const teacherConfig: Config = {
    ...config,
    model: { ...config.model, model_name_or_path: source },
    // A random-init teacher must differ from a random-init student of the same config.
    training: { ...config.training, seed: config.training.seed + 1000 },
  };
  const { model, tokenizer, adapter } = await loadModel(teacherConfig);
  // The teacher is frozen: with use_lora the student's (fresh, zero) adapter is no part of it.
  if (adapter) {
    adapter.dispose();
    model.adapter = null;
  }
  model.setTrainable(false);
  return {
    dim: model.config.hiddenSize,
    async embed(items, maxLength) {
      const batch = collateTexts(tokenizer, items.map((i) => i.text), maxLength);
      const out = noGrad(() =>
        tidy(() => {
          const pooled = pooledHidden(model, batch, config);
          return config.model.normalize ? l2Normalize(pooled) : pooled;
        })
      );
      return await out.toArray().finally(() => out.dispose()) as Float32Array;
    },
    dispose: () => model.dispose(),
  };
}

/** The student: model, optional projection, and how it embeds. */
export interface Student {
  /** The student's model session: kept inputs, eval mode, checkpoint weights. */
  session: ModelSession;
  /** The model, tokenizer, trainable model parameters and LoRA adapter (if any). */
  loaded: LoadedModel;
  /** The student model. */
  model: CausalLM;
  /** Its tokenizer. */
  tokenizer: TextTokenizer;
  /** Trainable parameters (model or adapter, + projection). */
  parameters: Map<string, Tensor>;
  /** The projection `projection.weight`, if any. */
  projection: Tensor | null;
  /** Embedding width after the projection. */
  dim: number;
  /**
   * Embeddings `[texts, dim]`: pooled, projected, normalised per config. With
   * `live`, the uploaded inputs are pushed onto it and the caller frees them
   * after backward (see {@link pooledHidden}).
   */
  embed(texts: readonly string[], maxLength: number, live?: ModelInputs[]): Tensor;
  /** Real tokens embedded so far (for `tokens_per_s`). */
  tokens: number;
  /**
   * Writes the trainable weights: `model.safetensors` (model + projection),
   * or with LoRA the peft adapter and `model.safetensors` with the projection alone.
   */
  saveWeights(dir: string): Promise<void>;
  /** Loads what {@link Student.saveWeights} wrote, in place. */
  loadWeights(dir: string): Promise<void>;
  /** Frees the projection, the kept inputs, the adapter and the model. */
  dispose(): void;
}

/** Loads the student of `config`; `teacherDim` checks the projection. */
export function loadStudent(config: Config, teacherDim: number | null): Promise<Student> {
  return withModelSession(config, (session) => studentOf(config, session, teacherDim));
}

function studentOf(config: Config, session: ModelSession, teacherDim: number | null): Student {
  const { loaded, model, tokenizer, trainable } = session;
  const hidden = model.config.hiddenSize;
  const projectionDim = config.model.projection_dim;
  if (config.model.student_dim !== null && config.model.student_dim !== hidden) {
    throw new Error(
      `model.student_dim ${config.model.student_dim}, but the student's hidden size is ${hidden}`,
    );
  }
  if (config.model.projection_hidden_dim !== null && projectionDim === null) {
    throw new Error("model.projection_hidden_dim needs model.projection_dim (the output width)");
  }
  if (teacherDim !== null && (projectionDim ?? hidden) !== teacherDim) {
    throw new Error(
      projectionDim === null
        ? `student embeddings have ${hidden} dimensions, the teacher's ${teacherDim}: ` +
          `set model.projection_dim: ${teacherDim}`
        : `model.projection_dim ${projectionDim} must equal the teacher's width ${teacherDim}`,
    );
  }
  const parameters = new Map(trainable);
  let projection: Tensor | null = null;
  let mlp: ProjectionMlp | null = null;
  if (projectionDim !== null && config.model.projection_hidden_dim !== null) {
    mlp = projectionMlp(
      hidden,
      config.model.projection_hidden_dim,
      projectionDim,
      Rng.seeded(config.training.seed + 2),
    );
    for (const [name, p] of mlp.parameters) parameters.set(name, p);
  } else if (projectionDim !== null) {
    const rng = Rng.seeded(config.training.seed + 2);
    projection = parameter(
      Float32Array.from(
        { length: projectionDim * hidden },
        () => rng.normal(0, 1 / Math.sqrt(hidden)),
      ),
      [projectionDim, hidden],
    );
    parameters.set(PROJECTION, projection);
  }
  const dim = projectionDim ?? hidden;
  for (const d of config.model.matryoshka_dims) {
    if (d > dim) {
      throw new Error(`model.matryoshka_dims: ${d} is wider than the embedding (${dim})`);
    }
  }
  // model.safetensors holds the projection beside the adapter, or after the model's weights.
  const projectionFile = projection ? new Map([[PROJECTION, projection]]) : mlp?.parameters;
  const student: Student = {
    session,
    loaded,
    model,
    tokenizer,
    parameters,
    projection,
    dim,
    tokens: 0,
    embed(texts, maxLength, live) {
      const batch = collateTexts(tokenizer, texts, maxLength);
      student.tokens += countTokens(batch.attentionMask);
      const pooled = pooledHidden(model, batch, config, live);
      return tidy(() => {
        if (mlp) {
          // distill-for-retrieval normalises the pooled embedding before its projection too.
          const input = config.model.normalize ? l2Normalize(pooled) : pooled;
          const projected = mlp.forward(input);
          return config.model.normalize ? l2Normalize(projected) : projected;
        }
        const projected = projection ? matmul(pooled, projection, { transB: true }) : pooled;
        return config.model.normalize ? l2Normalize(projected) : projected;
      });
    },
    saveWeights: (dir) => session.saveWeights(dir, projectionFile),
    loadWeights: (dir) => session.loadWeights(dir, projectionFile),
    dispose() {
      projection?.dispose();
      mlp?.dispose();
      session.dispose();
    },
  };
  return student;
}

/** The loss of one phase: `distill_phase1`/`distill_phase2` (or InfoNCE without a teacher), matryoshka-wrapped per config. */
export function phaseLoss(
  config: Config,
  phase: 1 | 2,
  training: TrainingConfig,
  hasTeacher: boolean,
): Loss {
  let name: string, options: Record<string, unknown>;
  if (phase === 1) {
    name = "distill_phase1";
    options = { ...training.loss_options };
  } else {
    name = hasTeacher ? "distill_phase2" : "infonce";
    // With num_negatives each query is scored against its own group only (distill-for-retrieval).
    const ownGroup = training.num_negatives !== null ? { in_batch_negatives: false } : {};
    options = { temperature: training.temperature, ...ownGroup, ...training.loss_options };
  }
  const dims = config.model.matryoshka_dims;
  if (dims.length === 0) return createLoss(name, options);
  return createLoss("matryoshka", { loss: name, loss_options: options, dims: [...dims] });
}

/** Options of {@link distillTasks}. */
export interface DistillOptions {
  /** Data already read. */
  data?: DistillData;
  /** Progress lines of evaluation (default console.log). */
  log?: (line: string) => void;
  /**
   * Data-parallel ranks: phase 2's in-batch negatives (and its MSE rows) come
   * from every rank, and evaluation encodes a share per rank.
   */
  distributed?: Collective;
}

/** The two phase tasks over one student (phase 2 continues from phase 1's weights in memory). */
export interface DistillTasks {
  /** The student both phases train. */
  student: Student;
  /** The teacher (null: phase 2 alone, with InfoNCE). */
  teacher: Teacher | null;
  /** The data both phases read. */
  data: DistillData;
  /** Phase 1: the student's embeddings regress onto the teacher's. */
  phase1: TrainingTask;
  /** Phase 2: contrastive training (with the teacher's scores when there is a teacher). */
  phase2: TrainingTask;
  /**
   * Student embeddings `[texts, dim]` of `texts` truncated to `maxLength`
   * tokens, as evaluation computes them (adapter dropout off).
   */
  embed(texts: readonly string[], maxLength: number): Promise<Float32Array>;
  /** Retrieval evaluation of the teacher (null without a teacher model/table). */
  evaluateTeacher(): Promise<EvalOutcome>;
  /** Frees the student and the teacher. */
  dispose(): void;
}

/** Builds the student, the teacher and both phase tasks of `config`. */
export async function distillTasks(
  config: Config,
  options: DistillOptions = {},
): Promise<DistillTasks> {
  const data = options.data ?? await readDistillData(config);
  const teacher = await loadTeacher(config);
  if (!teacher && !config.training.skip_phase1) {
    throw new Error(
      "distill phase 1 needs model.teacher_model_name_or_path (or skip_phase1: true)",
    );
  }
  let student: Student;
  try {
    student = await loadStudent(config, teacher?.dim ?? null);
  } catch (error) {
    teacher?.dispose();
    throw error;
  }
  try {
    const log = options.log ?? ((line: string) => console.log(line));
    const comm = options.distributed && options.distributed.size > 1 ? options.distributed : null;
    return await distillTasksOf(config, data, student, teacher, log, comm);
  } catch (error) {
    student.dispose();
    teacher?.dispose();
    throw error;
  }
}

async function distillTasksOf(
  config: Config,
  data: DistillData,
  student: Student,
  teacher: Teacher | null,
  log: (line: string) => void,
  comm: Collective | null,
): Promise<DistillTasks> {
  const d = config.data;
  const p1 = config.phase1 ?? config.training, p2 = config.phase2 ?? config.training;
  const hasTeacher = teacher !== null;
  // A micro-batch of either phase starts the student's session: the last one's inputs go.
  const session = student.session;

  const instruction = d.query_instruction ?? "";
  // Phase 1 texts: every corpus passage and every training query; with max_samples, the
  // first N in distill-for-retrieval's order (queries first, then passages).
  const passageTexts: IdText[] = [];
  for (const [id, doc] of data.corpus) {
    passageTexts.push({ id, text: passageText(doc), kind: "passage" });
  }
  const queryTexts: IdText[] = [];
  for (const qid of data.trainQrels.keys()) {
    const text = data.queries.get(qid);
    if (text !== undefined) queryTexts.push({ id: qid, text: instruction + text, kind: "query" });
  }
  const texts = p1.max_samples === null
    ? [...passageTexts, ...queryTexts]
    : [...queryTexts, ...passageTexts].slice(0, p1.max_samples);
  const phase1Length = p1.max_length ?? d.passage_max_len;
  const loss1 = phaseLoss(config, 1, p1, hasTeacher);
  const batch1 = p1.per_device_train_batch_size;
  const phase1: TrainingTask = {
    recipe: "distill",
    parameters: student.parameters,
    batchesPerEpoch: Math.ceil(texts.length / batch1),
    async microBatch(epoch, index, rng) {
      session.startMicroBatch(rng);
      const before = student.tokens;
      const items = microBatchIndices(texts.length, d.dataset_seed, epoch, index, batch1)
        .map((i) => texts[i]!);
      const target = await teacher!.embed(items, phase1Length);
      const embeddings = student.embed(items.map((i) => i.text), phase1Length, session.live);
      const out = await loss1.compute({ student: embeddings, teacher: target });
      const tokens = student.tokens - before;
      return { loss: out.loss, parts: out.parts, metrics: out.metrics, tokens };
    },
    evaluate: undefined,
    saveWeights: (dir) => student.saveWeights(dir),
    loadWeights: (dir) => student.loadWeights(dir),
  };

  const sources = {
    positives: materializeQrels([{
      qrels: data.trainQrels,
      corpus: data.corpus,
      queries: data.queries,
      minScore: d.min_score ?? 1,
      name: d.qrels_path ?? "qrels",
    }]),
    runNegatives: d.run_path ? { run: await readRun(d.run_path), corpus: data.corpus } : undefined,
    randomCorpus: data.corpus,
    seed: d.dataset_seed,
  };
  // num_negatives: groups of 1 + n passages (judged grade-0 documents first, as
  // distill-for-retrieval takes them); otherwise (query, positive, negative) triplets.
  const groups = p2.num_negatives === null
    ? (() => {
      const triplets = new TripletDataset(sources);
      return {
        length: triplets.length,
        get: (i: number, epoch: number) => {
          const t = triplets.get(i, epoch);
          return { qid: t.qid, query: t.query, passages: [t.positive, t.negative] };
        },
      };
    })()
    : new BinaryDataset({
      ...sources,
      negatives: materializeQrels([{
        qrels: data.trainQrels,
        corpus: data.corpus,
        queries: data.queries,
        minScore: 0,
        maxScore: 1,
        name: d.qrels_path ?? "qrels",
      }]),
      groupSize: p2.num_negatives + 1,
    });
  if (groups.length === 0) throw new Error("data: no training query has a positive document");
  const groupCount = Math.min(groups.length, p2.max_samples ?? Infinity);
  const loss2 = phaseLoss(config, 2, p2, hasTeacher);
  const batch2 = p2.per_device_train_batch_size;
  const queryLength = p2.max_length ?? d.query_max_len;
  const passageLength = p2.max_length ?? d.passage_max_len;
  const phase2: TrainingTask = {
    recipe: "distill",
    parameters: student.parameters,
    batchesPerEpoch: Math.ceil(groupCount / batch2),
    // Across ranks the loss is the global batch's; each rank's gradient reaches its own rows.
    gradientReduction: comm ? "sum" : "mean",
    async microBatch(epoch, index, rng) {
      session.startMicroBatch(rng);
      const before = student.tokens;
      const items = microBatchIndices(groupCount, d.dataset_seed, epoch, index, batch2)
        .map((i) => groups.get(i, epoch));
      const queryItems = items.map((t) => ({
        id: t.qid,
        text: instruction + t.query,
        kind: "query" as const,
      }));
      const passageItems = items.flatMap((t) =>
        t.passages.map((p) => ({ id: p.id, text: passageText(p), kind: "passage" as const }))
      );
      const q = student.embed(queryItems.map((i) => i.text), queryLength, session.live);
      const p = student.embed(passageItems.map((i) => i.text), passageLength, session.live);
      const labels = items.flatMap((t) => t.passages.map((_, j) => j === 0 ? 1 : 0));
      const tq = teacher ? await teacher.embed(queryItems, queryLength) : null;
      const tp = teacher ? await teacher.embed(passageItems, passageLength) : null;
      const batch = comm
        ? await gatherPhase2Batch(comm, { q, p, labels, tq, tp })
        : { q, p, labels, tq, tp };
      let out;
      if (batch.tq && batch.tp) {
        const target = new Float32Array(batch.tq.length + batch.tp.length);
        target.set(batch.tq), target.set(batch.tp, batch.tq.length);
        out = await loss2.compute({
          queryEmbeddings: batch.q,
          passageEmbeddings: batch.p,
          labels: batch.labels,
          student: concat([batch.q, batch.p], 0),
          teacher: target,
        });
      } else {
        out = await loss2.compute({
          queryEmbeddings: batch.q,
          passageEmbeddings: batch.p,
          labels: batch.labels,
        });
      }
      const tokens = student.tokens - before;
      return { loss: out.loss, parts: out.parts, metrics: out.metrics, tokens };
    },
    saveWeights: (dir) => student.saveWeights(dir),
    loadWeights: (dir) => student.loadWeights(dir),
  };

  const retrieval = async (
    encodeQueries: (texts: readonly string[]) => Promise<Float32Array>,
    encodeDocuments: (texts: readonly string[]) => Promise<Float32Array>,
    tag: string,
  ): Promise<EvalOutcome> => {
    if (!data.evalQrels || !data.evalQueries) {
      throw new Error("no evaluation data (eval_qrels_path)");
    }
    const documents = new Map<string, string>();
    for (const [id, doc] of data.corpus) documents.set(id, passageText(doc));
    const result = await evaluateRetriever({
      queries: data.evalQueries,
      documents,
      qrels: data.evalQrels,
      encodeQueries,
      encodeDocuments,
      search: exactTopKGpu,
    }, {
      k: 100,
      batchSize: config.training.per_device_eval_batch_size,
      ...retrievalEvalOptions(config),
      progress: phasedEvalProgress(log),
    });
    return evaluationToOutcome(
      result.evaluation,
      result.run,
      tag,
      config.data.eval_relevance_level,
    );
  };
  const studentEncoder = (maxLength: number, prefix = "") => async (batch: readonly string[]) => {
    const out = noGrad(() => student.embed(batch.map((text) => prefix + text), maxLength));
    return await out.toArray().finally(() => out.dispose()) as Float32Array;
  };
  const sharded = (encode: (texts: readonly string[]) => Promise<Float32Array>) =>
    comm ? shardedEncoder(comm, encode) : encode;
  const evaluate = () =>
    session.inEvalMode(() =>
      retrieval(
        sharded(studentEncoder(d.query_max_len, instruction)),
        sharded(studentEncoder(d.passage_max_len)),
        "distill",
      )
    );
  if (data.evalQrels) phase1.evaluate = phase2.evaluate = evaluate;

  // Texts → ids for a teacher table: evaluation embeds by text, so look the ids up by text.
  const teacherEncoder = (maxLength: number, kind: "queries" | "documents") => {
    const byText = new Map<string, string>();
    if (kind === "documents") {
      for (const [id, doc] of data.corpus) byText.set(passageText(doc), id);
    } else for (const [id, text] of data.evalQueries ?? data.queries) byText.set(text, id);
    const itemKind = kind === "documents" ? "passage" as const : "query" as const;
    return (batch: readonly string[]) =>
      teacher!.embed(
        batch.map((text) => ({ id: byText.get(text) ?? "", text, kind: itemKind })),
        maxLength,
      );
  };
  return {
    student,
    teacher,
    data,
    phase1,
    phase2,
    embed: (texts, maxLength) => session.inEvalMode(() => studentEncoder(maxLength)(texts)),
    evaluateTeacher: () => {
      if (!teacher) throw new Error("no teacher to evaluate");
      return retrieval(
        teacherEncoder(d.query_max_len, "queries"),
        teacherEncoder(d.passage_max_len, "documents"),
        "teacher",
      );
    },
    dispose() {
      student.dispose();
      teacher?.dispose();
    },
  };
}
