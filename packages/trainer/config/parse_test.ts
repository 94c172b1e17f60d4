import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig } from "./parse.ts";
import { resolvedConfigYaml } from "./resolved_yaml.ts";
import { dataKeys, modelKeys, trainingKeys } from "./schema.ts";
import { runDirectory, runName } from "./run_location.ts";

const MINIMAL = `recipe: blockrank
model:
  model_name_or_path: /models/mistral
data:
  data_path: train.jsonl
`;

/** Parses and returns the problem messages (failing if parsing succeeds). */
function problems(text: string, sets: string[] = []): string[] {
  try {
    parseConfig(text, "cfg.yaml", sets);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => p.message);
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseConfig: a minimal config gets every default from the schema", () => {
  const config = parseConfig(MINIMAL, "cfg.yaml");
  assert.equal(config.recipe, "blockrank");
  assert.equal(config.name, null);
  assert.equal(config.model.model_name_or_path, "/models/mistral");
  assert.equal(config.data.data_path, "train.jsonl");
  for (
    const [section, table] of [
      ["model", modelKeys],
      ["data", dataKeys],
      ["training", trainingKeys],
    ] as const
  ) {
    for (const [key, spec] of Object.entries(table)) {
      if (section === "model" && key === "model_name_or_path") continue;
      if (section === "data" && key === "data_path") continue;
      assert.deepEqual((config[section] as Record<string, unknown>)[key], spec.default, key);
    }
  }
  assert.equal(config.training.learning_rate, 5e-5);
  assert.equal(config.training.lr_scheduler_type, "linear");
  assert.equal(config.phase1, null);
  assert.equal(config.phase2, null);
});

Deno.test("parseConfig: values, aliases and YAML 1.2 numbers", () => {
  const config = parseConfig(
    MINIMAL + `  negatives_path: bm25.run
  min_score: 1
model2_is_not_here: null
`.replace("model2_is_not_here: null\n", "") + `training:
  learning_rate: 1e-5
  num_train_epochs: 2
  lr_scheduler_type: cosine
  warmup_ratio: 0.1
  evaluation_strategy: "no"
  loss_options: {margin: 0.5, hard: true}
`,
    "cfg.yaml",
  );
  assert.equal(config.data.run_path, "bm25.run");
  assert.equal(config.data.min_score, 1);
  assert.equal(config.training.learning_rate, 1e-5);
  assert.equal(config.training.lr_scheduler_type, "cosine");
  assert.equal(config.training.warmup_ratio, 0.1);
  assert.equal(config.training.eval_strategy, "no");
  assert.deepEqual(config.training.loss_options, { margin: 0.5, hard: true });
  const aliased = parseConfig(
    MINIMAL.replace("model:\n", "model:\n  torch_dtype: bfloat16\n"),
    "c",
  );
  assert.equal(aliased.model.dtype, "bfloat16");
});

Deno.test("parseConfig: unknown keys name file, line, key and the closest valid key", () => {
  const text = `recipe: blockrank
model:
  model_name_or_path: m
  lora_rnk: 8
data:
  data_path: d
training:
  learnign_rate: 1e-5
`;
  const messages = problems(text);
  assert.deepEqual(messages, [
    'cfg.yaml:4 (field "model.lora_rnk"): unknown key "lora_rnk" in section "model"; ' +
    'did you mean "lora_r"?',
    'cfg.yaml:8 (field "training.learnign_rate"): unknown key "learnign_rate" in section ' +
    '"training"; did you mean "learning_rate"?',
  ]);
});

Deno.test("parseConfig: a key in the wrong section says where it belongs", () => {
  const [message] = problems(MINIMAL.replace("model:\n", "model:\n  learning_rate: 1e-4\n"));
  assert.equal(
    message,
    'cfg.yaml:3 (field "model.learning_rate"): unknown key "learning_rate" in section "model": ' +
      'it belongs under "training:"',
  );
  const [top] = problems(MINIMAL + "seed: 3\n");
  assert.match(top!, /^cfg\.yaml:6 \(field "seed"\): .*belongs under "training:"/);
  const [typo] = problems(MINIMAL + "trainin:\n  seed: 3\n");
  assert.match(typo!, /^cfg\.yaml:6 .*unknown top-level key "trainin"; did you mean "training"\?/);
});

Deno.test("parseConfig: every problem is reported at once, in line order", () => {
  const text = `recipe: blockrank
model:
  model_name_or_path: 12
  lora_r: 0
  pooling: avg
  use_lora: "yes"
data:
  data_path: d
  train_test_split: 1.5
training:
  max_steps: 2.5
  lr_scheduler_type: cosin
  save_total_limit:
  seed: null
`;
  const messages = problems(text, ["training.max_stepz=3", "training.logging_steps=abc"]);
  assert.deepEqual(messages, [
    'cfg.yaml:3 (field "model.model_name_or_path"): expected string or null, got number 12',
    'cfg.yaml:4 (field "model.lora_r"): 0 is out of range: expected ≥ 1',
    'cfg.yaml:5 (field "model.pooling"): expected mean | last | cls, got "avg"',
    'cfg.yaml:6 (field "model.use_lora"): expected bool, got "yes"',
    'cfg.yaml:9 (field "data.train_test_split"): 1.5 is out of range: expected in [0, 1)',
    'cfg.yaml:11 (field "training.max_steps"): expected int ≥ -1, got number 2.5',
    'cfg.yaml:12 (field "training.lr_scheduler_type"): expected linear | cosine | constant | ' +
    'constant_with_warmup, got "cosin"',
    'cfg.yaml:14 (field "training.seed"): must not be empty: expected int ≥ 0',
    '--set training.max_stepz=3: unknown key "max_stepz" in section "training"; ' +
    'did you mean "max_steps"?',
    '--set training.logging_steps=abc (field "training.logging_steps"): expected int ≥ 1, ' +
    'got "abc"',
  ]);
});

Deno.test("parseConfig: --set overrides the file, values parsed as YAML", () => {
  const config = parseConfig(MINIMAL + "training:\n  learning_rate: 1e-4\n", "cfg.yaml", [
    "training.learning_rate=2e-5",
    "model.lora_target_modules=[q_proj, v_proj]",
    "model.use_rslora=true",
    "name=my-run",
    "training.save_total_limit=null",
    "data.queries_path=q.jsonl",
  ]);
  assert.equal(config.training.learning_rate, 2e-5);
  assert.deepEqual(config.model.lora_target_modules, ["q_proj", "v_proj"]);
  assert.equal(config.model.use_rslora, true);
  assert.equal(config.name, "my-run");
  assert.equal(config.training.save_total_limit, null);
  assert.equal(config.data.queries_path, "q.jsonl");
  assert.equal(runName(config), "my-run");
  assert.equal(runDirectory(config), join("runs", "my-run"));
  const fromSet = parseConfig("", "cfg.yaml", [
    "recipe=sft",
    "model.model_name_or_path=m",
    "data.data_path=d",
    "training.output_dir=/tmp/out",
  ]);
  assert.equal(fromSet.recipe, "sft");
  assert.equal(runDirectory(fromSet), "/tmp/out");
  assert.deepEqual(problems(MINIMAL, ["training.seed", "model=3", "trainng.seed=1"]), [
    "--set training.seed: expected section.key=value",
    '--set model=3: "model" is a section: set one key, as model.key=value',
    '--set trainng.seed=1: unknown key "trainng.seed": expected section.key with section one ' +
    'of model, data, training, phase1, phase2; did you mean "training.seed"?',
  ]);
});

Deno.test("parseConfig: recipe is required and checked", () => {
  assert.deepEqual(problems("model: {model_name_or_path: m}\n"), [
    'cfg.yaml (field "recipe"): missing top-level key "recipe" (one of blockrank, biencoder, ' +
    "listwise, crossencoder, distill, sft)",
  ]);
  assert.deepEqual(problems("recipe: blokrank\n"), [
    'cfg.yaml:1 (field "recipe"): unknown recipe "blokrank": expected one of blockrank, ' +
    'biencoder, listwise, crossencoder, distill, sft; did you mean "blockrank"?',
  ]);
});

Deno.test("parseConfig: YAML syntax errors and duplicate keys carry a line", () => {
  const [syntax] = problems("recipe: blockrank\nmodel:\n  lora_r: [1, 2\n");
  assert.match(syntax!, /^cfg\.yaml:\d+: YAML syntax: /);
  const [duplicate] = problems(MINIMAL + "training:\n  seed: 1\n  seed: 2\n");
  assert.match(duplicate!, /^cfg\.yaml:8: YAML syntax: .*unique/);
  const [both] = problems(
    MINIMAL.replace("model:\n", "model:\n  dtype: float16\n  torch_dtype: float32\n"),
  );
  assert.equal(
    both,
    'cfg.yaml:4 (field "model.torch_dtype"): "dtype" is already set at line 3 (under another name)',
  );
  assert.deepEqual(problems("- a\n- b\n"), ["cfg.yaml:1: the configuration must be a YAML map"]);
  assert.deepEqual(problems(MINIMAL + "training: 3\n"), [
    'cfg.yaml:6 (field "training"): section "training" must be a map of keys',
  ]);
});

Deno.test("parseConfig: cross-field checks", () => {
  assert.deepEqual(
    problems(MINIMAL + "training:\n  warmup_ratio: 0.1\n  warmup_steps: 10\n"),
    [
      'cfg.yaml:7 (field "training.warmup_ratio"): set warmup_ratio (0.1) or warmup_steps (10), ' +
      "not both",
    ],
  );
  assert.deepEqual(
    problems(MINIMAL.replace("model:\n", "model:\n  load_in_4bit: true\n"), [
      "model.use_lora=false",
    ]),
    [
      'cfg.yaml:3 (field "model.load_in_4bit"): load_in_4bit (QLoRA) needs use_lora: true: ' +
      "4-bit base weights are frozen",
    ],
  );
  assert.deepEqual(problems(MINIMAL, ["training.use_aux_loss=true"]), [
    '--set training.use_aux_loss=true (field "training.use_aux_loss"): use_aux_loss (BlockRank ' +
    "attention loss) needs model.use_blockrank: true",
  ]);
  assert.deepEqual(
    problems(MINIMAL, ["training.lr_scheduler_type=constant", "training.warmup_steps=5"]),
    [
      '--set training.lr_scheduler_type=constant (field "training.lr_scheduler_type"): ' +
      'lr_scheduler_type "constant" ignores warm-up; use "constant_with_warmup"',
    ],
  );
  assert.deepEqual(problems(MINIMAL, ["training.metric_for_best_model=eval/ndcg@10"]), [
    '--set training.metric_for_best_model=eval/ndcg@10 (field "training.metric_for_best_model"): ' +
    'metric_for_best_model "eval/ndcg@10" needs eval_strategy steps or epoch',
  ]);
  const evalSets = [
    "training.metric_for_best_model=eval/ndcg@10",
    "training.eval_strategy=steps",
    "data.eval_qrels_path=qrels.txt",
    "training.eval_steps=30",
    "training.save_steps=100",
  ];
  assert.equal(problems(MINIMAL, evalSets).length, 1);
  assert.match(
    problems(MINIMAL, evalSets)[0]!,
    /save_steps \(100\) to be a multiple of eval_steps \(30\)/,
  );
  // 90 is a multiple of 30: valid.
  const ok = parseConfig(MINIMAL, "cfg.yaml", [...evalSets, "training.save_steps=90"]);
  assert.equal(ok.training.save_steps, 90);
  assert.deepEqual(problems(MINIMAL, ["data.stride=30", "data.negative_source=run"]), [
    '--set data.stride=30 (field "data.stride"): stride 30 is larger than window_size 20: ' +
    "passages between windows would never be ranked",
    '--set data.negative_source=run (field "data.negative_source"): negative_source "run" needs ' +
    "data.run_path (the run that supplies negatives)",
  ]);
});

Deno.test("parseConfig: recipe-specific required keys", () => {
  assert.deepEqual(problems("recipe: blockrank\n"), [
    'cfg.yaml:1 (field "model.model_name_or_path"): recipe "blockrank" needs ' +
    "model.model_name_or_path",
    'cfg.yaml:1 (field "data.data_path"): recipe "blockrank" needs data.data_path',
  ]);
  assert.deepEqual(problems("recipe: biencoder\nmodel: {model_name_or_path: m}\n"), [
    'cfg.yaml:1 (field "data.data_path"): recipe "biencoder" needs data.data_path, or ' +
    "data.queries_path + data.corpus_path + data.qrels_path",
  ]);
  const trove = parseConfig(
    "recipe: biencoder\nmodel: {model_name_or_path: m}\n" +
      "data: {queries_path: q, corpus_path: c, qrels_path: r}\n",
    "cfg.yaml",
  );
  assert.equal(trove.data.qrels_path, "r");
});

Deno.test("parseConfig: distill's own checks come from its recipe table entry", () => {
  const text = `recipe: distill
model: {model_name_or_path: s, teacher_model_name_or_path: t, precomputed_embeddings_dir: p}
data: {data_path: d}
`;
  assert.deepEqual(problems(text), [
    'cfg.yaml:2 (field "model.precomputed_embeddings_dir"): precomputed_embeddings_dir and ' +
    "teacher_model_name_or_path both give the teacher; set one",
  ]);
  assert.deepEqual(
    problems(text.replace(", teacher_model_name_or_path: t", ""), [
      "training.skip_phase1=true",
      "training.skip_phase2=true",
    ]),
    [
      '--set training.skip_phase1=true (field "training.skip_phase1"): skip_phase1 and ' +
      "skip_phase2 leave nothing to train",
    ],
  );
});

Deno.test("parseConfig: distill phases override training; other recipes reject them", () => {
  const text = `recipe: distill
model: {model_name_or_path: student, teacher_model_name_or_path: teacher}
data: {data_path: d}
training:
  learning_rate: 1e-4
  max_steps: 100
phase1:
  learning_rate: 3e-4
phase2:
  temperature: 2
`;
  const config = parseConfig(text, "cfg.yaml");
  assert.equal(config.training.learning_rate, 1e-4);
  assert.equal(config.phase1?.learning_rate, 3e-4);
  assert.equal(config.phase1?.max_steps, 100);
  assert.equal(config.phase2?.learning_rate, 1e-4);
  assert.equal(config.phase2?.temperature, 2);
  assert.deepEqual(problems(text.replace("phase2:\n", "phase2:\n  output_dir: x\n")), [
    'cfg.yaml:10 (field "phase2.output_dir"): "output_dir" cannot differ between phases; ' +
    "set it in training",
  ]);
  assert.deepEqual(problems(text, ["phase1.warmup_steps=5", "phase1.warmup_ratio=0.2"]), [
    '--set phase1.warmup_ratio=0.2 (field "phase1.warmup_ratio"): phase1: set warmup_ratio (0.2) ' +
    "or warmup_steps (5), not both",
  ]);
  assert.deepEqual(problems(MINIMAL + "phase1:\n  seed: 1\n"), [
    'cfg.yaml:6 (field "phase1"): section "phase1" only applies to recipe "distill", not ' +
    '"blockrank"',
  ]);
});

Deno.test("resolvedConfigYaml: round trip gives the identical config", () => {
  const configs = [
    parseConfig(MINIMAL, "cfg.yaml"),
    parseConfig(MINIMAL, "cfg.yaml", [
      "name=123",
      "model.lora_target_modules=all-linear",
      "model.matryoshka_dims=[64, 128]",
      "model.projection_dim=128",
      "model.dtype=float16",
      "data.min_score=-1.5",
      "data.pad_to_multiple_of=8",
      "training.learning_rate=3.3e-7",
      "training.adam_epsilon=1e-12",
      "training.warmup_ratio=0.03",
      "training.lr_scheduler_type=cosine",
      "training.loss_options={margin: 0.25, mode: 'yes', flag: false}",
      "training.loss=margin_mse",
      "training.output_dir=0123",
      "training.greater_is_better=false",
      "training.metric_for_best_model=eval/loss",
      "training.eval_strategy=epoch",
      "training.save_strategy=epoch",
      "data.train_test_split=0.1",
    ]),
    parseConfig(
      `recipe: distill
model: {model_name_or_path: s, teacher_model_name_or_path: t}
data: {data_path: d}
training: {skip_phase1: true, max_steps: 10}
phase2: {learning_rate: 0.001, seed: 7}
`,
      "cfg.yaml",
    ),
  ];
  for (const config of configs) {
    const text = resolvedConfigYaml(config);
    const again = parseConfig(text, "config.yaml");
    assert.deepEqual(again, config);
    assert.equal(resolvedConfigYaml(again), text);
  }
  assert.equal(configs[1]!.name, "123");
  assert.equal(configs[1]!.training.output_dir, "0123");
});

Deno.test("loadConfig: reads a file; a missing file is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "cfg.yaml");
    await Deno.writeTextFile(path, MINIMAL + "training:\n  seeed: 1\n");
    await assert.rejects(() => loadConfig(path), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, new RegExp(`${path}:7 \\(field "training.seeed"\\).*"seed"`));
      return true;
    });
    const config = await loadConfig(path, []).catch(() => loadConfig(path.slice(0, -5) + ".yml"))
      .catch(() => undefined);
    assert.equal(config, undefined);
    await Deno.writeTextFile(path, MINIMAL);
    assert.equal((await loadConfig(path, ["training.seed=7"])).training.seed, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    () => loadConfig("/nonexistent/cfg.yaml"),
    /^InputError: \/nonexistent\/cfg\.yaml: cannot read the configuration file/,
  );
});

Deno.test("parseConfig: a --set that a distill phase section shadows is reported; --set phaseN works", () => {
  const text = `recipe: distill
model: {model_name_or_path: student, teacher_model_name_or_path: teacher}
data: {data_path: d}
training:
  max_steps: 100
phase1:
  max_steps: 40
phase2:
  max_steps: 40
`;
  assert.deepEqual(problems(text, ["training.max_steps=2"]), [
    '--set training.max_steps=2 (field "training.max_steps"): phase1.max_steps ' +
    '(cfg.yaml:7 (field "phase1.max_steps")) overrides training.max_steps in phase1; ' +
    "use --set phase1.max_steps=… (and the other phase) instead",
    '--set training.max_steps=2 (field "training.max_steps"): phase2.max_steps ' +
    '(cfg.yaml:9 (field "phase2.max_steps")) overrides training.max_steps in phase2; ' +
    "use --set phase2.max_steps=… (and the other phase) instead",
  ]);
  const config = parseConfig(text, "cfg.yaml", ["phase1.max_steps=2", "phase2.max_steps=3"]);
  assert.equal(config.phase1?.max_steps, 2);
  assert.equal(config.phase2?.max_steps, 3);
  // A --set the phases do not shadow applies to both.
  const lr = parseConfig(text, "cfg.yaml", ["training.learning_rate=0.01"]);
  assert.equal(lr.phase1?.learning_rate, 0.01);
  assert.equal(lr.phase2?.learning_rate, 0.01);
});
