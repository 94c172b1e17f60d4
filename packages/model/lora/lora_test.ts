import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { backward, dropoutMask, noGrad, randnArray, Tensor, tidy } from "@irforge/tensor";
import { assertClose, F32_TOL, gpuTest, GRAD_TOL, relativeError } from "@irforge/tensor/testing";
import { f16BitsToF32, f64ToF16Bits } from "../safetensors/half.ts";
import { CausalLM } from "../causal_lm.ts";
import type { ModelConfig } from "../config.ts";
import { causalLMFromArrays, loadCausalLM } from "../load.ts";
import { causalInputs, disposeInputs } from "../model_inputs.ts";
import {
  randomReferenceWeights,
  referenceForward,
  type ReferenceLora,
  referenceLoss,
} from "../reference_cpu.ts";
import { SafetensorsFile } from "../safetensors/reader.ts";
import { LoraAdapter, loraDropoutSeed, type LoraModuleArrays, loraTargetPaths } from "./adapter.ts";
import { loraConfig, loraConfigFromTrainerConfig, loraScaling, parsePeftConfig } from "./config.ts";
import {
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  loadLoraAdapter,
  readLoraAdapter,
  saveLoraAdapter,
} from "./io.ts";
import { ADAPTER_SIDE_WEIGHTS, mergeLoraCheckpoint, mergeLoraWeight } from "./merge.ts";
import { openCheckpoint } from "../safetensors/checkpoint.ts";
import { writeSafetensors } from "../safetensors/writer.ts";

const tiny: ModelConfig = {
  modelType: "mistral",
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  slidingWindow: null,
  tieWordEmbeddings: false,
  vocabSize: 40,
  maxPositionEmbeddings: 64,
  bosTokenId: 1,
  eosTokenIds: [2],
  padTokenId: null,
  dtype: null,
};

const ids = [[3, 17, 5, 29, 8, 11, 2, 39], [7, 7, 1, 0, 22, 35, 14, 9]];
const labels = ids.map((row) => row.map((v, t) => (t < 2 ? -100 : v)));

function randomLora(config: ReturnType<typeof loraConfig>, seed: number) {
  const arrays = new Map<string, LoraModuleArrays>();
  let s = seed;
  for (const path of loraTargetPaths(tiny, config)) {
    const w = path.endsWith("down_proj")
      ? [tiny.hiddenSize, tiny.intermediateSize]
      : path.endsWith("o_proj")
      ? [tiny.hiddenSize, tiny.numHeads * tiny.headDim]
      : path.includes("k_proj") || path.includes("v_proj")
      ? [tiny.numKvHeads * tiny.headDim, tiny.hiddenSize]
      : path.includes("q_proj")
      ? [tiny.numHeads * tiny.headDim, tiny.hiddenSize]
      : [tiny.intermediateSize, tiny.hiddenSize];
    const [out, inF] = w as [number, number];
    arrays.set(path, {
      a: Float32Array.from(randnArray(config.r * inF, s++, 0, 0.3)),
      b: Float32Array.from(randnArray(out * config.r, s++, 0, 0.3)),
    });
  }
  return arrays;
}

function referenceLoraMap(
  arrays: Map<string, LoraModuleArrays>,
  r: number,
  scale: number,
): Map<string, ReferenceLora> {
  const m = new Map<string, ReferenceLora>();
  for (const [path, { a, b }] of arrays) {
    m.set(path, { a: Float64Array.from(a), b: Float64Array.from(b), r, scale });
  }
  return m;
}

async function gpuLogitsAndLoss(model: CausalLM): Promise<{ logits: Float32Array; loss: number }> {
  const inputs = causalInputs(ids);
  const B = ids.length, T = ids[0]!.length;
  const targets = Tensor.fromArray(
    CausalLM.shiftedTargets(Int32Array.from(labels.flat()), B, T),
    [B * T],
    "i32",
  );
  const { logits } = model.forward(inputs);
  const loss = CausalLM.lmLoss(logits!, targets);
  backward(loss);
  const out = { logits: (await logits!.toArray()) as Float32Array, loss: await loss.item() };
  for (const t of [logits!, loss, targets]) t.dispose();
  disposeInputs(inputs);
  return out;
}

gpuTest(
  "rsLoRA on a subset of modules and layers matches the float64 reference (logits, grads)",
  async () => {
    const weights = randomReferenceWeights(tiny, 11, 0.2);
    const config = loraConfig({
      r: 2,
      loraAlpha: 3,
      useRslora: true,
      targetModules: ["q_proj", "v_proj", "down_proj"],
      layersToTransform: [1],
    });
    assert.equal(loraScaling(config), 3 / Math.sqrt(2));
    const arrays = randomLora(config, 100);
    assert.deepEqual([...arrays.keys()], [
      "model.layers.1.self_attn.q_proj",
      "model.layers.1.self_attn.v_proj",
      "model.layers.1.mlp.down_proj",
    ]);
    const model = causalLMFromArrays(tiny, weights);
    const adapter = LoraAdapter.fromArrays(config, arrays).attach(model);
    const { logits, loss } = await gpuLogitsAndLoss(model);
    const lora = referenceLoraMap(arrays, 2, loraScaling(config));
    const refLogits = referenceForward(tiny, weights, { inputIds: ids, lora });
    assertClose(logits, refLogits, F32_TOL, "logits");
    const refLoss = referenceLoss(refLogits, labels, tiny.vocabSize);
    assert.ok(Math.abs(loss - refLoss) < 1e-5, `loss ${loss} vs ${refLoss}`);

    // Gradients of every factor of two modules vs central differences of the reference loss.
    for (
      const [path, factor] of [["model.layers.1.self_attn.v_proj", "b"], [
        "model.layers.1.mlp.down_proj",
        "a",
      ]] as const
    ) {
      const values = lora.get(path)![factor];
      const numeric = new Float64Array(values.length);
      const h = 1e-5;
      for (let i = 0; i < values.length; i++) {
        const keep = values[i]!;
        values[i] = keep + h;
        const up = referenceLoss(
          referenceForward(tiny, weights, { inputIds: ids, lora }),
          labels,
          40,
        );
        values[i] = keep - h;
        const down = referenceLoss(
          referenceForward(tiny, weights, { inputIds: ids, lora }),
          labels,
          40,
        );
        values[i] = keep;
        numeric[i] = (up - down) / (2 * h);
      }
      const t = adapter.modules.get(path)![factor];
      assert.ok(t.grad, `${path} ${factor} has a gradient`);
      assertClose(await t.grad!.toArray(), numeric, GRAD_TOL, `${path} ${factor} grad`);
    }
    for (const [name, p] of model.params) {
      assert.equal(
        p.grad,
        null,
        `${name} (base) got a gradient`,
      );
    }
    adapter.dispose();
    model.dispose();
  },
);

gpuTest(
  "LoRA on an f16 frozen base = float64 reference on the f16-rounded weights (logits, grads)",
  async () => {
    const weights = randomReferenceWeights(tiny, 12, 0.2);
    // The reference sees what the GPU holds: matrices rounded to f16, norms f32.
    const rounded = new Map<string, Float64Array>();
    for (const [name, w] of weights) {
      const matrix = !name.endsWith("norm.weight");
      rounded.set(name, matrix ? w.map((v) => f16BitsToF32(f64ToF16Bits(v))) : w);
    }
    const config = loraConfig({
      r: 2,
      loraAlpha: 4,
      targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"],
    });
    const arrays = randomLora(config, 200);
    const model = causalLMFromArrays(tiny, weights, { dtype: "f16" });
    assert.equal(model.params.get("model.layers.0.self_attn.q_proj.weight")!.dtype, "f16");
    assert.equal(model.params.get("model.embed_tokens.weight")!.dtype, "f16");
    assert.equal(model.params.get("model.norm.weight")!.dtype, "f32");
    const adapter = LoraAdapter.fromArrays(config, arrays).attach(model);
    const { logits, loss } = await gpuLogitsAndLoss(model);
    const lora = referenceLoraMap(arrays, 2, loraScaling(config));
    const refLogits = referenceForward(tiny, rounded, { inputIds: ids, lora });
    assertClose(logits, refLogits, F32_TOL, "logits");
    // The rounding matters: the f32 weights give measurably different logits.
    const unrounded = referenceForward(tiny, weights, { inputIds: ids, lora });
    assert.ok(relativeError(logits, unrounded).relative > 1e-4, "f16 rounding not visible");
    const refLoss = referenceLoss(refLogits, labels, tiny.vocabSize);
    assert.ok(Math.abs(loss - refLoss) < 1e-5, `loss ${loss} vs ${refLoss}`);
    const path = "model.layers.0.self_attn.k_proj";
    const values = lora.get(path)!.a;
    const numeric = new Float64Array(values.length);
    const h = 1e-5;
    for (let i = 0; i < values.length; i++) {
      const keep = values[i]!;
      values[i] = keep + h;
      const up = referenceLoss(
        referenceForward(tiny, rounded, { inputIds: ids, lora }),
        labels,
        40,
      );
      values[i] = keep - h;
      const down = referenceLoss(
        referenceForward(tiny, rounded, { inputIds: ids, lora }),
        labels,
        40,
      );
      values[i] = keep;
      numeric[i] = (up - down) / (2 * h);
    }
    const a = adapter.modules.get(path)!.a;
    assertClose(await a.grad!.toArray(), numeric, GRAD_TOL, `${path} a grad`);
    for (const [name, p] of model.params) {
      assert.equal(p.grad, null, `${name} (base) got a gradient`);
    }
    adapter.dispose();
    model.dispose();
  },
);

gpuTest("fresh adapter: peft init (A in ±1/√in, B = 0) leaves logits unchanged", async () => {
  const weights = randomReferenceWeights(tiny, 5, 0.2);
  const config = loraConfig({ r: 4, loraAlpha: 8, targetModules: ["q_proj", "up_proj", "o_proj"] });
  const adapter = LoraAdapter.create(tiny, config, { seed: 9 });
  assert.equal(adapter.modules.size, 6);
  for (const [path, { a, b }] of adapter.modules) {
    const inF = a.shape[1]!;
    const av = (await a.toArray()) as Float32Array;
    const bound = 1 / Math.sqrt(inF);
    const max = av.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(max <= bound && max > 0.5 * bound, `${path}: max|A| ${max}, bound ${bound}`);
    assert.ok(((await b.toArray()) as Float32Array).every((v) => v === 0), `${path}: B is zero`);
  }
  const model = causalLMFromArrays(tiny, weights);
  adapter.attach(model);
  const { logits } = await gpuLogitsAndLoss(model);
  assertClose(logits, referenceForward(tiny, weights, { inputIds: ids }), F32_TOL, "logits");
  // Same seed, same draws.
  const again = LoraAdapter.create(tiny, config, { seed: 9 });
  const [p0] = adapter.modules.keys();
  assert.deepEqual(
    await again.modules.get(p0!)!.a.toArray(),
    await adapter.modules.get(p0!)!.a.toArray(),
  );
  again.dispose();
  adapter.dispose();
  model.dispose();
});

gpuTest("LoRA dropout: seeded mask on the adapter input only, off in eval", async () => {
  const config = loraConfig({ r: 2, loraAlpha: 4, loraDropout: 0.3, targetModules: ["q_proj"] });
  const arrays = randomLora(config, 7);
  const adapter = LoraAdapter.fromArrays(config, arrays, 1234);
  const path = "model.layers.0.self_attn.q_proj";
  const rows = 5, inF = tiny.hiddenSize;
  const x = Float64Array.from(Float32Array.from(randnArray(rows * inF, 3)));
  const expected = (mask: Uint8Array | null) => {
    const { a, b } = arrays.get(path)!;
    const out = new Float64Array(rows * 16);
    for (let t = 0; t < rows; t++) {
      const xa = [0, 0];
      for (let k = 0; k < 2; k++) {
        for (let i = 0; i < inF; i++) {
          const xi = mask ? (mask[t * inF + i]! ? x[t * inF + i]! / 0.7 : 0) : x[t * inF + i]!;
          xa[k]! += a[k * inF + i]! * xi;
        }
      }
      for (let o = 0; o < 16; o++) {
        out[t * 16 + o] = 2 * (b[o * 2]! * xa[0]! + b[o * 2 + 1]! * xa[1]!);
      }
    }
    return out;
  };
  const run = (): Promise<Float32Array> =>
    noGrad(() =>
      tidy(() => {
        const xt = Tensor.fromArray(x, [rows, inF]);
        return adapter.delta(path, xt)!.keep();
      })
    ).toArray() as Promise<Float32Array>;
  assertClose(await run(), expected(null), F32_TOL, "eval delta");
  adapter.training = true;
  const first = await run();
  assertClose(
    first,
    expected(dropoutMask(rows * inF, 0.3, loraDropoutSeed(1234, 0))),
    F32_TOL,
    "call 0",
  );
  const second = await run();
  assertClose(
    second,
    expected(dropoutMask(rows * inF, 0.3, loraDropoutSeed(1234, 1))),
    F32_TOL,
    "call 1",
  );
  assert.notDeepEqual(first, second);
  adapter.dispose();
});

gpuTest("save → load round trip in peft's format; config keys match peft's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lora-save-" });
  const config = loraConfig({
    r: 3,
    loraAlpha: 6,
    loraDropout: 0.1,
    targetModules: ["k_proj", "gate_proj"],
    useRslora: true,
    baseModelNameOrPath: "tiny",
  });
  const arrays = randomLora(config, 40);
  const adapter = LoraAdapter.fromArrays(config, arrays);
  await saveLoraAdapter(adapter, dir);
  const read = await readLoraAdapter(dir, tiny);
  assert.deepEqual(read.config, config);
  assert.deepEqual([...read.modules.keys()].sort(), [...arrays.keys()].sort());
  for (const [path, { a, b }] of arrays) {
    assert.deepEqual(read.modules.get(path)!.a, a);
    assert.deepEqual(read.modules.get(path)!.b, b);
  }
  const st = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS_NAME));
  assert.deepEqual(st.names().sort(), [
    "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight",
    "base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight",
    "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
    "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight",
    "base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight",
    "base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight",
    "base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight",
    "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight",
  ]);
  assert.deepEqual(
    st.info("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight").shape,
    [3, 16],
  );
  assert.deepEqual(
    st.info("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight").shape,
    [8, 3],
  );
  st.close();
  const written = JSON.parse(await Deno.readTextFile(join(dir, ADAPTER_CONFIG_NAME)));
  assert.equal(written.peft_type, "LORA");
  assert.equal(written.task_type, "CAUSAL_LM");
  assert.equal(written.use_rslora, true);
  const fixtureDir = sharedPathOrSkip("peft adapter_config keys", "fixtures", "hf-mistral-tiny");
  if (fixtureDir) {
    const peft = JSON.parse(await Deno.readTextFile(join(fixtureDir, ADAPTER_CONFIG_NAME)));
    for (const key of Object.keys(written)) assert.ok(key in peft, `peft has no key ${key}`);
    // Fields peft needs to rebuild the adapter, with peft's value types.
    for (
      const key of [
        "peft_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "use_rslora",
        "bias",
        "task_type",
        "base_model_name_or_path",
        "fan_in_fan_out",
        "init_lora_weights",
        "modules_to_save",
        "inference_mode",
        "peft_version",
        "use_dora",
        "layers_to_transform",
      ]
    ) {
      assert.ok(key in written, `we do not write ${key}`);
      if (peft[key] !== null && written[key] !== null) {
        assert.equal(typeof written[key], typeof peft[key], key);
      }
    }
  }
  adapter.dispose();
  await Deno.remove(dir, { recursive: true });
});

gpuTest("peft's adapter loads: keys, shapes and config as saved by peft", async () => {
  const dir = sharedPathOrSkip("peft adapter load", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  const adapter = await loadLoraAdapter(model, dir);
  assert.equal(adapter.config.r, 4);
  assert.equal(adapter.scaling, 2);
  assert.equal(adapter.modules.size, 14);
  // Per layer r·(in + out): q 64+64, k 64+32, v 64+32, o 64+64, gate/up 64+176, down 176+64.
  assert.equal(adapter.parameterCount, 2 * 4 * (128 + 96 + 96 + 128 + 240 + 240 + 240));
  for (const [name, t] of adapter.namedParameters()) {
    assert.match(
      name,
      /^base_model\.model\.model\.layers\.\d\.(self_attn|mlp)\.\w+\.lora_[AB]\.default\.weight$/,
    );
    assert.ok(t.requiresGrad, name);
  }
  adapter.dispose();
  model.dispose();
});

gpuTest("bad adapters: errors name the file and the key or field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lora-bad-" });
  const config = loraConfig({ r: 2, loraAlpha: 4, targetModules: ["q_proj"] });
  const adapter = LoraAdapter.fromArrays(config, randomLora(config, 3));
  await saveLoraAdapter(adapter, dir);
  adapter.dispose();
  const wider: ModelConfig = { ...tiny, hiddenSize: 32, numHeads: 8 };
  await assert.rejects(
    () => readLoraAdapter(dir, wider),
    (e: Error) =>
      e.message.includes(ADAPTER_WEIGHTS_NAME) &&
      e.message.includes("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") &&
      e.message.includes("does not fit"),
  );
  const cfgPath = join(dir, ADAPTER_CONFIG_NAME);
  const json = JSON.parse(await Deno.readTextFile(cfgPath));
  await Deno.writeTextFile(cfgPath, JSON.stringify({ ...json, use_dora: true }));
  await assert.rejects(
    () => readLoraAdapter(dir, tiny),
    (e: Error) => e.message.includes(cfgPath) && e.message.includes(`field "use_dora"`),
  );
  await Deno.writeTextFile(cfgPath, JSON.stringify({ ...json, r: 3 }));
  await assert.rejects(
    () => readLoraAdapter(dir, tiny),
    (e: Error) => e.message.includes("lora_A.weight") && e.message.includes("r = 3"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer keys → LoraConfig; peft config parsing", () => {
  const c = loraConfigFromTrainerConfig({
    lora_r: 16,
    lora_alpha: 32,
    lora_dropout: 0.05,
    lora_target_modules: ["q_proj", "self_attn.v_proj"],
    use_rslora: false,
    model_name_or_path: "/models/mistral",
  });
  assert.deepEqual(c, {
    r: 16,
    loraAlpha: 32,
    loraDropout: 0.05,
    targetModules: ["q_proj", "v_proj"],
    useRslora: false,
    layersToTransform: null,
    baseModelNameOrPath: "/models/mistral",
  });
  assert.equal(loraScaling(c), 2);
  const all = loraConfigFromTrainerConfig({
    lora_r: 4,
    lora_alpha: 4,
    lora_dropout: 0,
    lora_target_modules: "all-linear",
  });
  assert.equal(all.targetModules.length, 7);
  assert.throws(
    () =>
      loraConfigFromTrainerConfig({
        lora_r: 4,
        lora_alpha: 4,
        lora_dropout: 0,
        lora_target_modules: ["lm_head"],
      }),
    /lm_head/,
  );
  assert.throws(
    () => parsePeftConfig({ peft_type: "IA3" }, "x.json"),
    /x\.json \(field "peft_type"\)/,
  );
  const p = parsePeftConfig({
    peft_type: "LORA",
    r: 2,
    lora_alpha: 1,
    target_modules: ["o_proj"],
    layers_to_transform: 1,
  }, "y.json");
  assert.deepEqual(p.layersToTransform, [1]);
});

Deno.test("mergeLoraWeight: W + s·B·A in float64", () => {
  const w = [1, 2, 3, 4, 5, 6]; // [2, 3]
  const a = [1, 0, -1, 2, 1, 0]; // [2, 3]
  const b = [0.5, 1, -1, 2]; // [2, 2]
  const m = mergeLoraWeight(w, a, b, 2, 3);
  // B·A = [[0.5+2, 1, -0.5], [-1+4, 2, 1]]
  assert.deepEqual([...m], [1 + 7.5, 2 + 3, 3 - 1.5, 4 + 9, 5 + 6, 6 + 3]);
});

gpuTest("merge: merged checkpoint's logits equal the adapter model's (fixture)", async () => {
  const dir = sharedPathOrSkip("LoRA merge", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const out = await Deno.makeTempDir({ prefix: "lora-merged-" });
  const progress: string[] = [];
  const report = await mergeLoraCheckpoint({
    base: dir,
    adapter: dir,
    out,
    onProgress: (_d, _t, name) => progress.push(name),
  });
  assert.equal(report.merged, 14);
  assert.equal(progress.length, report.tensors);
  const withAdapter = await loadCausalLM(dir);
  const adapter = await loadLoraAdapter(withAdapter, dir);
  const merged = await loadCausalLM(out);
  const logitsOf = async (m: CausalLM) => {
    const inputs = causalInputs(ids.map((r) => r.map((v) => v % 320)));
    const l = noGrad(() => m.forward(inputs).logits!);
    const v = (await l.toArray()) as Float32Array;
    l.dispose();
    disposeInputs(inputs);
    return v;
  };
  const expected = await logitsOf(withAdapter);
  const actual = await logitsOf(merged);
  assertClose(actual, expected, 1e-5, "merged vs adapter logits");
  // A merge must change something: the base alone differs.
  withAdapter.adapter = null;
  const base = await logitsOf(withAdapter);
  assert.ok(Math.max(...base.map((v, i) => Math.abs(v - expected[i]!))) > 1e-3);
  adapter.dispose();
  withAdapter.dispose();
  merged.dispose();
  await Deno.remove(out, { recursive: true });
});

Deno.test("merge: a head beside the adapter (model.safetensors, e.g. score.weight) is carried", async () => {
  const fixture = sharedPathOrSkip("LoRA merge head", "fixtures", "hf-mistral-tiny");
  if (!fixture) return;
  const dir = await Deno.makeTempDir({ prefix: "lora-merge-head-" });
  try {
    // A cross-encoder's LoRA checkpoint: peft's adapter files plus the head in model.safetensors.
    const adapterDir = join(dir, "checkpoint");
    await Deno.mkdir(adapterDir);
    for (const name of [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]) {
      await Deno.copyFile(join(fixture, name), join(adapterDir, name));
    }
    const hidden = JSON.parse(await Deno.readTextFile(join(fixture, "config.json"))).hidden_size;
    const head = Float32Array.from({ length: hidden }, (_, i) => Math.sin(i + 1) / 7);
    await writeSafetensors(join(adapterDir, ADAPTER_SIDE_WEIGHTS), [
      ["score.weight", { dtype: "F32", shape: [1, hidden], data: head }],
    ]);
    const out = join(dir, "merged");
    const report = await mergeLoraCheckpoint({ base: fixture, adapter: adapterDir, out });
    assert.equal(report.merged, 14);
    assert.deepEqual(report.carried, ["score.weight"]);
    const merged = await openCheckpoint(out);
    const base = await openCheckpoint(fixture);
    try {
      assert.equal(merged.names().length, base.names().length + 1);
      assert.equal(report.tensors, merged.names().length);
      assert.deepEqual(merged.info("score.weight").shape, [1, hidden]);
      assert.deepEqual(await merged.read("score.weight", { as: "f32" }), head);
    } finally {
      merged.close();
      base.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("merge: adapter/base mismatch names the adapter file and key", async () => {
  const adapterDir = await Deno.makeTempDir({ prefix: "lora-mismatch-" });
  const fixture = sharedPathOrSkip("LoRA merge mismatch", "fixtures", "hf-mistral-tiny");
  if (!fixture) return;
  const config = loraConfig({ r: 2, loraAlpha: 4, targetModules: ["q_proj"] });
  const adapter = LoraAdapter.fromArrays(config, randomLora(config, 3)); // hidden 16, fixture has 64
  await saveLoraAdapter(adapter, adapterDir);
  adapter.dispose();
  await assert.rejects(
    () => mergeLoraCheckpoint({ base: fixture, adapter: adapterDir, out: `${adapterDir}/out` }),
    (e: Error) =>
      e.message.includes(join(adapterDir, ADAPTER_WEIGHTS_NAME)) &&
      e.message.includes("q_proj.lora_A.weight") && e.message.includes("do not fit"),
  );
  await Deno.remove(adapterDir, { recursive: true });
});
