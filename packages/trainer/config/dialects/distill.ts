/**
 * The `distill` dialect: a distill-for-retrieval configuration
 * (yuancu/distill-for-retrieval, `train_ddp.py --config`) with its `model`
 * (`teacher`, `student`, `teacher_dim`, `student_dim`,
 * `projection_hidden_dim`, `use_projection`), `phase1`/`phase2`, `training`
 * and `paths` sections, turned into an irforge `distill` run.
 *
 * - `use_projection: true` → the two-layer projection that project builds
 *   (`projection_dim: teacher_dim`, `projection_hidden_dim`); `false` → MRL:
 *   the student regresses onto the first `student_dim` values of the
 *   teacher's embedding (`teacher_prefix_dim`).
 * - The run is named `{model_name}-{config_name}` as upstream names it
 *   (`distilled-<teacher_dim>d` or `distilled-<student_dim>d-mrl`, then the
 *   file name) and goes to `paths.output_dir/<name>`; `save_to_artifacts`
 *   copies the final weights to `paths.artifacts_dir/<name>`.
 * - A phase's `datasets:` entries name BEIR collections; irforge reads a
 *   local BEIR directory (`name: ../data/scifact`), one for both phases.
 * - A phase's `precomputed_embeddings_dir` (the teacher's embeddings from
 *   `precompute_embeddings.py`, which upstream's trainer requires) maps to
 *   `model.precomputed_embeddings_dir`; the teacher model is then not loaded,
 *   as upstream. The top-level key is the precompute script's output
 *   directory (noted).
 * - What upstream hard-codes is set too: a full fine-tune (no LoRA), mean
 *   pooling, L2-normalised embeddings, AdamW weight decay 0.01, linear decay
 *   after warm-up; phase 2's InfoNCE scores each query against its own
 *   positive and negatives only.
 *
 * @module
 */

import {
  boolOf,
  numberOf,
  stringOf,
  Translation,
  type UpstreamDocument,
  type UpstreamValue,
} from "./upstream_yaml.ts";
import type { InputLocation } from "@irforge/data/input-error";

const MODEL_KEYS = [
  "teacher",
  "student",
  "teacher_dim",
  "student_dim",
  "projection_hidden_dim",
  "use_projection",
];
const PHASE_COMMON = [
  "batch_size",
  "learning_rate",
  "warmup_steps",
  "num_epochs",
  "gradient_accumulation_steps",
  "max_length",
  "datasets",
  "precomputed_embeddings_dir",
  "use_torch_compile",
  "torch_compile_mode",
];
const PHASE1_KEYS = [...PHASE_COMMON, "mse_weight", "cosine_weight", "max_samples_per_dataset"];
const PHASE2_KEYS = [
  ...PHASE_COMMON,
  "infonce_weight",
  "mse_weight",
  "temperature",
  "num_negatives",
  "max_samples",
  "train_router",
  "router_loss_weight",
  "router_warmup_ratio",
  "router_lr",
];
const TRAINING_KEYS = ["skip_phase1", "skip_phase2", "save_to_artifacts"];
const PATHS_KEYS = ["output_dir", "artifacts_dir"];
const TOP_KEYS = [
  "model",
  "phase1",
  "phase2",
  "training",
  "paths",
  "query_instruction",
  "precomputed_embeddings_dir",
  "dialect",
];

/** Whether `doc` looks like a distill-for-retrieval configuration. */
export function looksLikeDistill(doc: UpstreamDocument): boolean {
  if (doc.has("recipe")) return false;
  const model = doc.get("model")?.children;
  return doc.has("paths") || model?.has("teacher") === true || model?.has("student") === true ||
    model?.has("use_projection") === true;
}

/**
 * distill-for-retrieval's experiment name: `distilled-<teacher_dim>d` (with
 * projection) or `distilled-<student_dim>d-mrl`, then `-<config_name>`.
 */
export function distillExperimentName(
  useProjection: boolean,
  teacherDim: number,
  studentDim: number,
  configName: string,
): string {
  const model = useProjection ? `distilled-${teacherDim}d` : `distilled-${studentDim}d-mrl`;
  return `${model}-${configName}`;
}

/** Translates a distill-for-retrieval configuration (file stem `configName`) into irforge keys. */
export function translateDistill(
  doc: UpstreamDocument,
  file: string,
  configName: string,
): Translation {
  const t = new Translation();
  t.entries.push({ path: "recipe", value: "distill", where: { file, field: "dialect distill" } });
  t.mapping.push(`(dialect distill) → recipe: "distill"`);
  for (const [key, entry] of doc) {
    if (!TOP_KEYS.includes(key)) {
      t.unknown(entry.where, TOP_KEYS, "distill-for-retrieval top-level");
    }
  }
  for (const section of ["model", "phase1", "phase2", "training", "paths"]) {
    if (!doc.get(section)?.children) {
      t.refuse(
        doc.get(section)?.where ?? { file, field: section },
        `section "${section}" is missing or not a map (distill-for-retrieval requires it)`,
      );
    }
  }
  const instruction = doc.get("query_instruction");
  if (instruction) t.set("data.query_instruction", instruction.value, instruction.where);
  const precomputed = precomputedOf(t, doc);

  const model = doc.get("model")?.children ?? new Map<string, UpstreamValue>();
  const dims = translateModel(t, model, file, precomputed !== undefined);

  let dataset: { name: string; where: InputLocation } | undefined;
  for (const phase of ["phase1", "phase2"] as const) {
    const entries = doc.get(phase)?.children ?? new Map<string, UpstreamValue>();
    const found = translatePhase(t, phase, entries);
    if (found && dataset && found.name !== dataset.name) {
      t.refuse(
        found.where,
        `phase2 trains on "${found.name}" but phase1 on "${dataset.name}": irforge distils ` +
          "on one collection for both phases",
      );
    }
    dataset ??= found;
  }
  if (dataset) t.set("data.data_path", dataset.name, dataset.where);
  else {
    t.refuse(
      { file, field: "phase1.datasets" },
      "no dataset: give phase1.datasets (or phase2.datasets) with name: <BEIR directory> " +
        "(irforge reads local BEIR collections: corpus.jsonl, queries.jsonl, qrels/train.tsv)",
    );
  }

  const experiment = dims
    ? distillExperimentName(dims.useProjection, dims.teacherDim, dims.studentDim, configName)
    : configName;
  t.set("name", experiment, { file, field: "(experiment name {model_name}-{config_name})" });

  const training = doc.get("training")?.children ?? new Map<string, UpstreamValue>();
  const paths = doc.get("paths")?.children ?? new Map<string, UpstreamValue>();
  let artifacts = false;
  for (const [key, entry] of training) {
    if (key === "skip_phase1" || key === "skip_phase2") {
      t.set(`training.${key}`, entry.value, entry.where);
    } else if (key === "save_to_artifacts") artifacts = boolOf(t, entry) ?? false;
    else t.unknown(entry.where, TRAINING_KEYS, "distill-for-retrieval training");
  }
  for (const [key, entry] of paths) {
    const dir = stringOf(t, entry);
    if (dir === undefined) continue;
    if (key === "output_dir") t.set("training.output_dir", joinPath(dir, experiment), entry.where);
    else if (key === "artifacts_dir") {
      if (artifacts) t.set("training.artifacts_dir", joinPath(dir, experiment), entry.where);
      else t.note(entry.where, "not used: save_to_artifacts is false (as upstream)");
    } else t.unknown(entry.where, PATHS_KEYS, "distill-for-retrieval paths");
  }
  if (artifacts && !paths.has("artifacts_dir")) {
    t.refuse(
      training.get("save_to_artifacts")!.where,
      "save_to_artifacts needs paths.artifacts_dir",
    );
  }

  // What upstream hard-codes: a full fine-tune of a mean-pooled, normalised
  // sentence encoder, AdamW(weight_decay 0.01), linear decay after warm-up.
  t.setDefault("model.use_lora", false, file, "full fine-tune");
  t.setDefault("model.pooling", "mean", file, "mean pooling");
  t.setDefault("model.normalize", true, file, "normalised embeddings");
  t.setDefault("training.weight_decay", 0.01, file, "AdamW weight_decay 0.01");
  t.setDefault("training.lr_scheduler_type", "linear", file, "linear decay after warm-up");
  return t;
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

/**
 * The phases' `precomputed_embeddings_dir` (what upstream's trainer reads,
 * one per phase) as `model.precomputed_embeddings_dir`: the phases that run
 * must agree. Returns the value set, if any.
 */
function precomputedOf(t: Translation, doc: UpstreamDocument): string | undefined {
  const top = doc.get("precomputed_embeddings_dir");
  const skipped = (n: 1 | 2) =>
    doc.get("training")?.children?.get(`skip_phase${n}`)?.value === true;
  let chosen: UpstreamValue | undefined;
  for (const n of [1, 2] as const) {
    const entry = doc.get(`phase${n}`)?.children?.get("precomputed_embeddings_dir");
    if (!entry || stringOf(t, entry) === undefined) continue;
    if (skipped(n)) {
      t.note(entry.where, `not used: phase ${n} is skipped`);
    } else if (!chosen) chosen = entry;
    else if (chosen.value !== entry.value) {
      t.refuse(
        entry.where,
        `phase2 reads teacher embeddings from "${entry.value}" but phase1 from ` +
          `"${chosen.value}": irforge distils both phases with one teacher table`,
      );
    } else t.note(entry.where, "same directory as phase1's");
  }
  if (top) {
    t.note(
      top.where,
      "precompute_embeddings.py's output directory; training reads each phase's " +
        "precomputed_embeddings_dir, as upstream's trainer",
    );
  }
  if (!chosen) return undefined;
  t.set("model.precomputed_embeddings_dir", chosen.value, chosen.where);
  return chosen.value as string;
}

interface Dims {
  useProjection: boolean;
  teacherDim: number;
  studentDim: number;
}

function translateModel(
  t: Translation,
  model: Map<string, UpstreamValue>,
  file: string,
  precomputed: boolean,
): Dims | undefined {
  for (const [key, entry] of model) {
    if (!MODEL_KEYS.includes(key)) {
      t.unknown(entry.where, MODEL_KEYS, "distill-for-retrieval model");
    }
  }
  const get = (key: string) => model.get(key);
  const teacher = get("teacher"), student = get("student");
  if (teacher && precomputed) {
    t.note(
      teacher.where,
      "not loaded: the teacher's embeddings come from precomputed_embeddings_dir, as upstream",
    );
  } else if (teacher) t.set("model.teacher_model_name_or_path", teacher.value, teacher.where);
  if (student) t.set("model.model_name_or_path", student.value, student.where);
  const teacherDim = get("teacher_dim"), studentDim = get("student_dim");
  const hiddenDim = get("projection_hidden_dim"), use = get("use_projection");
  for (
    const [key, entry] of [["teacher_dim", teacherDim], ["student_dim", studentDim], [
      "use_projection",
      use,
    ]] as const
  ) {
    if (!entry) {
      t.refuse(
        { file, field: `model.${key}` },
        `model.${key} is missing (distill-for-retrieval requires it)`,
      );
    }
  }
  if (!teacherDim || !studentDim || !use) return undefined;
  const tDim = numberOf(t, teacherDim),
    sDim = numberOf(t, studentDim),
    useProjection = boolOf(t, use);
  if (tDim === undefined || sDim === undefined || useProjection === undefined) return undefined;
  t.set("model.teacher_dim", tDim, teacherDim.where);
  t.set("model.student_dim", sDim, studentDim.where);
  if (useProjection) {
    t.set("model.projection_dim", tDim, use.where);
    if (hiddenDim) t.set("model.projection_hidden_dim", hiddenDim.value, hiddenDim.where);
    else {t.refuse(
        { file, field: "model.projection_hidden_dim" },
        "use_projection needs projection_hidden_dim",
      );}
  } else {
    t.set("model.teacher_prefix_dim", sDim, use.where);
    if (hiddenDim) t.note(hiddenDim.where, "not used: use_projection is false (MRL), as upstream");
  }
  return { useProjection, teacherDim: tDim, studentDim: sDim };
}

/** Translates one phase section; returns the dataset it names, if any. */
function translatePhase(
  t: Translation,
  phase: "phase1" | "phase2",
  entries: Map<string, UpstreamValue>,
): { name: string; where: InputLocation } | undefined {
  const known = phase === "phase1" ? PHASE1_KEYS : PHASE2_KEYS;
  const weights: Record<string, unknown> = {};
  let weightsWhere: InputLocation | undefined;
  let dataset: { name: string; where: InputLocation } | undefined;
  const routerOn = entries.get("train_router")?.value === true;
  for (const [key, entry] of entries) {
    const { where } = entry;
    if (!known.includes(key)) {
      t.unknown(where, known, `distill-for-retrieval ${phase}`);
      continue;
    }
    switch (key) {
      case "batch_size":
        t.set(`${phase}.per_device_train_batch_size`, entry.value, where);
        break;
      case "num_epochs":
        t.set(`${phase}.num_train_epochs`, entry.value, where);
        break;
      case "learning_rate":
      case "warmup_steps":
      case "gradient_accumulation_steps":
      case "max_length":
      case "temperature":
      case "num_negatives":
        t.set(`${phase}.${key}`, entry.value, where);
        break;
      case "max_samples_per_dataset":
      case "max_samples":
        t.set(`${phase}.max_samples`, entry.value, where);
        break;
      case "mse_weight":
      case "cosine_weight":
      case "infonce_weight":
        weights[key] = entry.value;
        weightsWhere ??= where;
        t.mapping.push(
          `${where.field} → ${phase}.loss_options.${key}: ${JSON.stringify(entry.value)}`,
        );
        break;
      case "datasets":
        dataset = datasetOf(
          t,
          phase,
          entry,
          entries.has("max_samples") || entries.has("max_samples_per_dataset"),
        );
        break;
      case "precomputed_embeddings_dir":
        break; // precomputedOf: one table for both phases
      case "use_torch_compile":
      case "torch_compile_mode":
        t.note(where, "irforge's kernels are compiled WebGPU shaders already; nothing to set");
        break;
      case "train_router":
        if (boolOf(t, entry)) {
          t.refuse(
            where,
            "train_router is not supported: irforge trains no student/teacher router",
          );
        } else t.note(where, "false: no router is trained, as upstream");
        break;
      default: // router_loss_weight, router_warmup_ratio, router_lr
        if (routerOn) break; // refused with train_router
        t.note(where, "not used: train_router is false (as upstream)");
    }
  }
  if (weightsWhere) {
    t.entries.push({ path: `${phase}.loss_options`, value: weights, where: weightsWhere });
  }
  if (phase === "phase2") {
    // Phase 2's InfoNCE needs the teacher/student MSE weight spelled out (upstream requires both).
    for (const key of ["infonce_weight", "mse_weight"]) {
      if (!(key in weights) && weightsWhere) {
        t.refuse(weightsWhere, `phase2.${key} is missing (distill-for-retrieval requires it)`);
      }
    }
  }
  return dataset;
}

/** `datasets: [{name, max_samples}]`: one local BEIR directory; its max_samples caps the phase. */
function datasetOf(
  t: Translation,
  phase: string,
  entry: UpstreamValue,
  capSet: boolean,
): { name: string; where: InputLocation } | undefined {
  const list = entry.value;
  if (!Array.isArray(list) || list.length === 0) {
    t.refuse(entry.where, "expected a list of {name, max_samples}");
    return undefined;
  }
  if (list.length > 1) {
    t.refuse(
      entry.where,
      `${list.length} datasets: irforge distils on one BEIR collection (merge them into one directory)`,
    );
    return undefined;
  }
  const item = list[0] as Record<string, unknown> | null;
  if (item === null || typeof item !== "object" || typeof item.name !== "string") {
    t.refuse(entry.where, "expected datasets: [{name: <BEIR directory>, max_samples: N}]");
    return undefined;
  }
  for (const key of Object.keys(item)) {
    if (key !== "name" && key !== "max_samples") {
      t.refuse(
        { ...entry.where, field: `${entry.where.field}[0].${key}` },
        `unknown dataset key "${key}" (expected name, max_samples)`,
      );
    }
  }
  const where = { ...entry.where, field: `${entry.where.field}[0].name` };
  t.mapping.push(`${where.field} → data.data_path: ${JSON.stringify(item.name)}`);
  if (item.max_samples !== undefined && item.max_samples !== null) {
    if (capSet) {
      t.refuse(entry.where, `${phase}: set max_samples once (in datasets or in the phase)`);
    } else {
      t.set(`${phase}.max_samples`, item.max_samples, {
        ...entry.where,
        field: `${entry.where.field}[0].max_samples`,
      });
    }
  }
  return { name: item.name, where };
}
