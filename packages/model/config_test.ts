import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import {
  ConfigError,
  configToJson,
  loadModelConfig,
  type ModelConfig,
  parseModelConfig,
} from "./config.ts";

Deno.test("config: hf-mistral-tiny (transformers v5 rope_parameters form)", async () => {
  const dir = sharedPathOrSkip("hf-mistral-tiny config", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const config = await loadModelConfig(dir);
  const expected: ModelConfig = {
    modelType: "mistral",
    hiddenSize: 64,
    intermediateSize: 176,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    slidingWindow: null,
    tieWordEmbeddings: false,
    vocabSize: 320,
    maxPositionEmbeddings: 256,
    bosTokenId: 1,
    eosTokenIds: [2],
    padTokenId: null,
    dtype: "float64",
  };
  assert.deepEqual(config, expected);
});

Deno.test("config: stories260K (llama, tied, v4 rope_theta form)", async () => {
  const file = sharedPathOrSkip("stories260K config", "data", "stories260K", "config.json");
  if (!file) return;
  const config = await loadModelConfig(file);
  assert.equal(config.modelType, "llama");
  assert.equal(config.tieWordEmbeddings, true);
  assert.equal(config.numHeads, 8);
  assert.equal(config.numKvHeads, 4);
  assert.equal(config.headDim, 8);
  assert.equal(config.intermediateSize, 172);
  assert.equal(config.numLayers, 5);
  assert.equal(config.vocabSize, 512);
  assert.equal(config.slidingWindow, null);
  assert.equal(config.ropeTheta, 10000);
  assert.equal(config.rmsNormEps, 1e-5);
  assert.equal(config.maxPositionEmbeddings, 512);
  assert.equal(config.dtype, "float32");
});

Deno.test("config: configToJson round-trips through parseModelConfig", async () => {
  const dir = sharedPathOrSkip("hf-mistral-tiny config", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const original = await loadModelConfig(dir);
  for (
    const variant of [
      original,
      { ...original, slidingWindow: 4096, eosTokenIds: [2, 32000], tieWordEmbeddings: true },
      { ...original, modelType: "llama" as const, slidingWindow: null, dtype: null },
    ]
  ) {
    const json = configToJson(variant);
    assert.equal(json["model_type"], variant.modelType);
    assert.deepEqual(
      json["architectures"],
      [variant.modelType === "llama" ? "LlamaForCausalLM" : "MistralForCausalLM"],
    );
    assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(json)), "x"), variant);
  }
});

Deno.test("config: HF defaults for absent optional keys", () => {
  const base = {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    vocab_size: 10,
  };
  const mistral = parseModelConfig({ model_type: "mistral", ...base }, "c.json");
  assert.equal(mistral.numKvHeads, 4);
  assert.equal(mistral.headDim, 8);
  assert.equal(mistral.slidingWindow, 4096); // MistralConfig's default
  assert.equal(mistral.tieWordEmbeddings, false);
  assert.equal(mistral.rmsNormEps, 1e-6);
  assert.equal(mistral.ropeTheta, 10000);
  assert.equal(mistral.maxPositionEmbeddings, 131072);
  assert.deepEqual(mistral.eosTokenIds, [2]);
  const llama = parseModelConfig(
    { model_type: "llama", ...base, eos_token_id: [128001, 128009] },
    "c.json",
  );
  assert.equal(llama.slidingWindow, null);
  assert.equal(llama.maxPositionEmbeddings, 2048);
  assert.deepEqual(llama.eosTokenIds, [128001, 128009]);
});

Deno.test("config: unsupported values name the file and field", async () => {
  const base = {
    model_type: "mistral",
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    vocab_size: 10,
  };
  const cases: [Record<string, unknown>, string][] = [
    [{ model_type: "gpt2" }, "model_type"],
    [{ hidden_size: undefined }, "hidden_size"],
    [{ num_hidden_layers: 1.5 }, "num_hidden_layers"],
    [{ num_key_value_heads: 3 }, "num_key_value_heads"],
    [
      { rope_parameters: { rope_type: "yarn", rope_theta: 1e6, factor: 4 } },
      "rope_parameters.rope_type",
    ],
    [{ rope_scaling: { type: "linear", factor: 2 } }, "rope_scaling.rope_type"],
    [
      { model_type: "llama", rope_scaling: { rope_type: "llama3", factor: 8 } },
      "rope_scaling.rope_type",
    ],
    [{ rope_theta: "big" }, "rope_theta"],
    [{ hidden_act: "gelu" }, "hidden_act"],
    [{ attention_bias: true }, "attention_bias"],
    [{ mlp_bias: true }, "mlp_bias"],
    [{ sliding_window: 0 }, "sliding_window"],
    [{ model_type: "llama", sliding_window: 4096 }, "sliding_window"],
    [{ eos_token_id: "2" }, "eos_token_id"],
    [{ tie_word_embeddings: "yes" }, "tie_word_embeddings"],
    [{ attention_dropout: 0.1 }, "attention_dropout"],
  ];
  for (const [change, field] of cases) {
    const json: Record<string, unknown> = { ...base, ...change };
    for (const key of Object.keys(json)) if (json[key] === undefined) delete json[key];
    assert.throws(
      () => parseModelConfig(json, "dir/config.json"),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(
          error.message.startsWith(`dir/config.json (field "${field}"): `),
          `${JSON.stringify(change)} gave: ${error.message}`,
        );
        return true;
      },
    );
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "config.json"), "{ not json");
    await assert.rejects(() => loadModelConfig(dir), /config\.json: invalid JSON/);
    await assert.rejects(
      () => loadModelConfig(join(dir, "missing")),
      /missing\/config\.json: cannot read/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
