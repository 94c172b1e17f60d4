import assert from "node:assert/strict";
import { getDevice } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import {
  causalLMFromArrays,
  disposeInputs,
  expectedParameterNames,
  loadModelConfig,
  parameterShape,
  uploadInputs,
} from "@irforge/model";
import { DEFAULT_DIR } from "../default/mod.ts";
import { Rng } from "../rng.ts";
import { neftuneMagnitude, neftuneNoise, noisyEmbeddings } from "./neftune.ts";

Deno.test("neftune: magnitude is alpha / sqrt(L·d)", () => {
  assert.equal(neftuneMagnitude(5, 100, 64), 5 / Math.sqrt(6400));
  assert.equal(neftuneMagnitude(5, 0, 64), 0);
  assert.throws(() => neftuneMagnitude(0, 10, 4), /alpha must be > 0/);
});

Deno.test("neftune: noise bound, spread and zero pads per row; seeded", () => {
  const batch = 2, length = 50, hidden = 64, alpha = 5;
  // Row 0: 50 real tokens; row 1: 20 real, 30 pads.
  const mask = new Int32Array(batch * length).fill(1);
  mask.fill(0, length + 20, 2 * length);
  const noise = neftuneNoise({ batch, length, hidden, attentionMask: mask }, alpha, 7);
  for (const [row, real] of [[0, 50], [1, 20]] as const) {
    const bound = alpha / Math.sqrt(real * hidden);
    let sum = 0, squares = 0, max = 0;
    for (let t = 0; t < real; t++) {
      for (let k = 0; k < hidden; k++) {
        const v = noise[(row * length + t) * hidden + k]!;
        sum += v;
        squares += v * v;
        max = Math.max(max, Math.abs(v));
      }
    }
    const n = real * hidden;
    assert.ok(max <= bound * (1 + 1e-6), `row ${row}: |noise| ${max} above ${bound}`);
    assert.ok(max > 0.95 * bound, `row ${row}: noise never reaches its bound (${max} vs ${bound})`);
    // uniform(−m, m): mean 0, variance m²/3; n ≥ 1280 draws → loose 5-sigma checks.
    assert.ok(Math.abs(sum / n) < 5 * bound / Math.sqrt(3 * n), `row ${row}: mean ${sum / n}`);
    const variance = squares / n;
    assert.ok(
      Math.abs(variance / (bound * bound / 3) - 1) < 0.2,
      `row ${row}: variance ${variance}`,
    );
  }
  for (let i = (length + 20) * hidden; i < 2 * length * hidden; i++) assert.equal(noise[i], 0);
  assert.deepEqual(
    neftuneNoise({ batch, length, hidden, attentionMask: mask }, alpha, 7),
    noise,
    "same seed, same noise",
  );
  assert.notDeepEqual(
    neftuneNoise({ batch, length, hidden, attentionMask: mask }, alpha, 8),
    noise,
  );
});

gpuTest("neftune: noisyEmbeddings = embed(ids) + the seeded noise; one RNG draw", async () => {
  await getDevice();
  const config = await loadModelConfig(`${DEFAULT_DIR}/tiny-llama`);
  const d = config.hiddenSize;
  const rng = Rng.seeded(3);
  const weights = new Map<string, Float32Array>();
  for (const name of expectedParameterNames(config)) {
    const shape = parameterShape(config, name);
    weights.set(
      name,
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 1)),
    );
  }
  const model = causalLMFromArrays(config, weights);
  const ids = Int32Array.from([1, 5, 9, 0, 1, 7, 3, 2]);
  const mask = Int32Array.from([1, 1, 1, 0, 1, 1, 1, 1]);
  const inputs = uploadInputs({ batch: 2, length: 4, inputIds: ids, attentionMask: mask }, null);
  try {
    const stream = Rng.seeded(11);
    const seed = Rng.seeded(11).next();
    const noisy = noisyEmbeddings(model, inputs, mask, 5, stream);
    const got = await noisy.toArray();
    noisy.dispose();
    assert.deepEqual(
      stream.state(),
      (() => {
        const r = Rng.seeded(11);
        r.next();
        return r.state();
      })(),
    );
    const noise = neftuneNoise({ batch: 2, length: 4, hidden: d, attentionMask: mask }, 5, seed);
    const table = weights.get("model.embed_tokens.weight")!;
    for (let i = 0; i < 8; i++) {
      for (let k = 0; k < d; k++) {
        const expected = table[ids[i]! * d + k]! + noise[i * d + k]!;
        assert.ok(Math.abs(got[i * d + k]! - expected) < 1e-6, `token ${i} dim ${k}`);
      }
    }
  } finally {
    disposeInputs(inputs);
    model.dispose();
  }
});
