/**
 * The GPU CausalLM against the float64 CPU reference (`reference_cpu.ts`) on
 * tiny random models, for the configurations the HF fixture does not show:
 * right and left padding through `attention_mask`, tied embeddings (Llama),
 * grouped-query ratios 1 and 4 (and head_dim ≠ hidden/heads), a sliding
 * window shorter than the sequence, rope_theta 1e6, configs parsed from Llama
 * and Mistral `config.json` objects, and explicit position ids.
 *
 * For each case: logits at real-token rows ≤ 1e-4 relative, loss ≤ 1e-4
 * absolute, and the GPU gradient of every parameter at the entry where it is
 * largest plus 6 random entries (plus chosen embedding rows) against central
 * finite differences (h = 1e-4) of the float64 reference loss, ≤ 1e-3 relative
 * to the GPU gradient tensor's max-abs.
 *
 * Position ids: HF's forward uses 0..T−1 in every row when `position_ids` is
 * not given, whatever the padding (`cache_position` → `position_ids`), and
 * `causalInputs` does the same; `generate()` instead passes
 * `cumsum(attention_mask) − 1`. RoPE scores depend only on i − j, so a
 * constant shift of a row's positions leaves its real-token logits unchanged
 * up to f32 rounding of the angles: both conventions give the same logits on
 * left-padded rows. The tests below check that, and that non-uniform explicit
 * positions are honoured.
 *
 * Left padding with labels −100 on pads only makes the last pad's row
 * predict the first real token (as in HF); that row's value depends on the
 * attention implementation, see `padRowFeedsLoss`.
 *
 * BlockRank layouts are not covered here (the reference has no block mask);
 * the attention kernel tests cover them.
 */

import assert from "node:assert/strict";
import { assertClose, F32_TOL, gpuTest, relativeError } from "@irforge/tensor/testing";
import { getDevice } from "@irforge/tensor";
import { type ModelConfig, parseModelConfig } from "./config.ts";
import {
  assertGradChecks,
  checkGradients,
  embeddingRowEntries,
  f32ReferenceWeights,
  type GpuRun,
  labelsFor,
  type ModelCase,
  realRows,
  referenceCaseLoss,
  referenceLogits,
  runOnGpu,
  seededRandom,
  tinyConfig,
} from "./testing_support.ts";

/** Loss tolerance (absolute), as in the HF parity check. */
const LOSS_TOL = 1e-4;
/** Token id used for padding; never drawn as a real token. */
const PAD = 0;
/** Sequence length of every case (lavapipe is slow; keep it small). */
const T = 12;

/** `rows` rows of `T` random ids in [3, vocab): 0–2 stay free for pad/bos/eos. */
function randomIds(rows: number, vocab: number, seed: number): number[][] {
  const random = seededRandom(seed);
  return Array.from(
    { length: rows },
    () => Array.from({ length: T }, () => 3 + Math.floor(random() * (vocab - 3))),
  );
}

/** Replaces the ids where the mask is 0 by the pad id. */
function padded(ids: number[][], mask: number[][]): number[][] {
  return ids.map((row, b) => row.map((id, t) => mask[b]![t] === 0 ? PAD : id));
}

/** A mask row of `T` with `real` ones, padded on the left or right. */
function maskRow(real: number, side: "left" | "right"): number[] {
  return Array.from(
    { length: T },
    (_, t) => (side === "right" ? t < real : t >= T - real) ? 1 : 0,
  );
}

/** Distinct real tokens of a case (mask 1), in first-seen order. */
function realTokens(c: ModelCase): number[] {
  const seen = new Set<number>();
  c.ids.forEach((row, b) =>
    row.forEach((id, t) => {
      if ((c.attentionMask?.[b]?.[t] ?? 1) === 1) seen.add(id);
    })
  );
  return [...seen];
}

/**
 * Whether some pad row's logits are counted by the loss: with left padding
 * and labels −100 only on pads, the last pad predicts the first real token.
 * HF does the same, but that row's value is implementation-defined: the
 * reference and the GPU give a query that sees no key zero attention output,
 * while HF's depends on its attention implementation (eager attends
 * uniformly to every key). Training data should also ignore the first label
 * after left padding.
 */
function padRowFeedsLoss(c: ModelCase): boolean {
  const labels = c.labels ?? labelsFor(c.ids, c.attentionMask);
  return c.ids.some((row, b) =>
    row.some((_, t) =>
      t + 1 < row.length && c.attentionMask?.[b]?.[t] === 0 && labels[b]![t + 1] !== -100
    )
  );
}

/** Builds a case of `config` with random weights. */
function makeCase(
  config: ModelConfig,
  seed: number,
  options: { rows?: number; mask?: number[][]; positionIds?: number[][] } = {},
): ModelCase {
  const ids = randomIds(options.rows ?? 2, config.vocabSize, seed + 1000);
  return {
    config,
    weights: f32ReferenceWeights(config, seed),
    ids: options.mask ? padded(ids, options.mask) : ids,
    attentionMask: options.mask,
    positionIds: options.positionIds,
  };
}

/**
 * Runs `c` on the GPU and checks logits (real rows), loss and gradients
 * against the reference. Embedding rows of two real tokens are always checked
 * in full; with padding and untied embeddings the pad row is checked in full
 * too (its gradient must be exactly zero: pads feed nothing that reaches the
 * loss).
 */
async function checkCase(c: ModelCase, what: string): Promise<GpuRun> {
  const B = c.ids.length, V = c.config.vocabSize;
  const run = await runOnGpu(c);

  // Every logit is finite, pad rows included: a NaN there would poison the
  // weight gradients through 0 · NaN in the backward matmuls.
  assert.ok(run.logits.every(Number.isFinite), `${what}: GPU logits contain NaN/Inf`);

  const expected = realRows(referenceLogits(c), c.attentionMask, B, T, V);
  const actual = realRows(run.logits, c.attentionMask, B, T, V);
  assertClose(actual, expected, F32_TOL, `${what}: logits at real rows`);

  const loss = referenceCaseLoss(c);
  assert.ok(
    Math.abs(run.loss - loss) <= LOSS_TOL,
    `${what}: loss ${run.loss} vs reference ${loss} (|diff| ${Math.abs(run.loss - loss)})`,
  );

  const embed = "model.embed_tokens.weight";
  const rows = realTokens(c).slice(0, 2);
  const padsPresent = c.attentionMask?.some((row) => row.includes(0)) ?? false;
  const padRowSilent = padsPresent && !c.config.tieWordEmbeddings && !padRowFeedsLoss(c);
  if (padsPresent && !c.config.tieWordEmbeddings) rows.push(PAD);
  const checks = checkGradients(c, run.grads, {
    seed: c.ids[0]![0]!,
    extraEntries: new Map([[embed, embeddingRowEntries(rows, c.config.hiddenSize)]]),
  });
  assertGradChecks(checks, undefined, `${what}: gradients vs finite differences`);
  assert.equal(checks.length, run.grads.size, `${what}: every parameter checked`);
  const worst = checks.reduce((a, b) => b.relative > a.relative ? b : a);
  console.log(JSON.stringify({
    case: what,
    logits_rel_err: relativeError(actual, expected).relative,
    loss_abs_err: Math.abs(run.loss - loss),
    grad_entries: checks.reduce((n, c) => n + c.entries.length, 0),
    grad_max_rel_err: worst.relative,
    worst_grad: worst.name,
  }));
  if (padRowSilent) {
    const g = run.grads.get(embed)!;
    const h = c.config.hiddenSize;
    const padRow = g.subarray(PAD * h, (PAD + 1) * h);
    assert.ok(
      padRow.every((x) => x === 0),
      `${what}: pad embedding row gradient is not exactly zero: ${padRow}`,
    );
  }
  return run;
}

/** Asserts two reference logit arrays differ by far more than the test tolerance. */
function assertDiscriminates(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  const r = relativeError(a, b).relative;
  assert.ok(r > 100 * F32_TOL, `${what}: the variants differ only by ${r}; the test cannot fail`);
}

gpuTest("model configs: right padding via attention_mask (Mistral, GQA 2)", async () => {
  const mask = [maskRow(T, "right"), maskRow(7, "right")];
  // In a causal model right pads come after every real token, so no real row
  // can see them with or without the mask: this case checks that the mask
  // path (pad queries that see no key) keeps everything finite, leaves real
  // rows, loss and gradients intact, and the pad embedding row silent. The
  // left-padding and sliding-window cases are the ones the mask decides.
  const c = makeCase(tinyConfig({ padTokenId: PAD }), 11, { mask });
  const run = await checkCase(c, "right padding");

  // Independent of the reference's mask code: the padded row's real logits
  // equal the reference of the unpadded 7-token sequence.
  const V = c.config.vocabSize;
  const alone = referenceLogits({ ...c, ids: [c.ids[1]!.slice(0, 7)], attentionMask: undefined });
  assertClose(run.logits.subarray(T * V, (T + 7) * V), alone, F32_TOL, "right pad vs unpadded");
});

gpuTest("model configs: left padding via attention_mask (Llama, MHA)", async () => {
  const mask = [maskRow(9, "left"), maskRow(5, "left"), maskRow(T, "left")];
  const config = tinyConfig({ modelType: "llama", numKvHeads: 4, padTokenId: PAD });
  const c = makeCase(config, 12, { mask, rows: 3 });
  const run = await checkCase(c, "left padding");

  // causalInputs uses HF's default positions 0..T−1 in every row, pads or not.
  assert.deepEqual(
    [...run.positionIds],
    Array.from({ length: 3 * T }, (_, i) => i % T),
    "causalInputs position ids",
  );
  // RoPE is relative: the real logits of row 1 (7 left pads, positions 7..11)
  // equal the unpadded 5-token sequence at positions 0..4.
  const V = config.vocabSize;
  const alone = referenceLogits({ ...c, ids: [c.ids[1]!.slice(7)], attentionMask: undefined });
  assertClose(run.logits.subarray((2 * T - 5) * V, 2 * T * V), alone, F32_TOL, "left vs unpadded");

  // With labels −100 on pads only, the last pad's row predicts the first real
  // token, so the pad embedding gets a gradient (the finite differences above
  // agree). Ignoring that first label too silences every pad row: then the
  // pad embedding's gradient must be exactly zero (checked by checkCase).
  assert.ok(padRowFeedsLoss(c));
  const labels = labelsFor(c.ids, mask).map((row, b) =>
    row.map((label, t) => t > 0 && mask[b]![t - 1] === 0 ? -100 : label)
  );
  const silent = { ...c, labels };
  assert.ok(!padRowFeedsLoss(silent));
  await checkCase(silent, "left padding, first real label ignored");
});

gpuTest("model configs: tied embeddings (Llama, GQA 2, right padding)", async () => {
  const config = tinyConfig({ modelType: "llama", tieWordEmbeddings: true, padTokenId: PAD });
  const c = makeCase(config, 13, { mask: [maskRow(T, "right"), maskRow(10, "right")] });
  assert.equal(c.weights.has("lm_head.weight"), false);
  const run = await checkCase(c, "tied embeddings");
  assert.equal(run.grads.has("lm_head.weight"), false, "a tied model has no lm_head parameter");
  // Rows of tokens absent from the batch get gradient only through the head:
  // check one in full by finite differences.
  const absent = Array.from({ length: config.vocabSize }, (_, v) => v)
    .find((v) => !c.ids.flat().includes(v))!;
  const embed = "model.embed_tokens.weight";
  const checks = checkGradients(c, run.grads, {
    names: [embed],
    entries: 0,
    extraEntries: new Map([[embed, embeddingRowEntries([absent], config.hiddenSize)]]),
  });
  assertGradChecks(checks, undefined, "tied head-only embedding row");
  assert.ok(checks[0]!.numeric.some((g) => Math.abs(g) > 1e-6), "head-only row has a gradient");
});

gpuTest("model configs: grouped-query ratio 1 (MHA)", async () => {
  await checkCase(makeCase(tinyConfig({ numHeads: 4, numKvHeads: 4 }), 14), "GQA ratio 1");
});

gpuTest("model configs: grouped-query ratio 4, head_dim ≠ hidden/heads", async () => {
  // 8 query heads of 8 (64 wide) on a 32-wide residual; 2 KV heads, so the
  // head → KV-head mapping (⌊h / 4⌋) is exercised, not just broadcast.
  const config = tinyConfig({ numHeads: 8, numKvHeads: 2, headDim: 8 });
  await checkCase(makeCase(config, 15), "GQA ratio 4");
});

gpuTest("model configs: sliding window shorter than the sequence (Mistral)", async () => {
  const config = tinyConfig({ slidingWindow: 4 });
  // Row 1 is left-padded: the window counts storage positions, as in HF.
  const c = makeCase(config, 16, { mask: [maskRow(T, "left"), maskRow(8, "left")] });
  await checkCase(c, "sliding window 4");
  assertDiscriminates(
    referenceLogits(c),
    referenceLogits({ ...c, config: { ...config, slidingWindow: null } }),
    "window 4 vs none",
  );

  // Off by one: window T−1 hides only key 0 from query T−1.
  const edge = makeCase(tinyConfig({ slidingWindow: T - 1 }), 17);
  await checkCase(edge, "sliding window T−1");
  const full = referenceLogits({ ...edge, config: { ...edge.config, slidingWindow: null } });
  const V = config.vocabSize;
  const windowed = referenceLogits(edge);
  assertClose(
    windowed.subarray(0, (T - 1) * V),
    full.subarray(0, (T - 1) * V),
    1e-12,
    "rows < T−1",
  );
  assertDiscriminates(
    windowed.subarray((T - 1) * V, T * V),
    full.subarray((T - 1) * V, T * V),
    "last row, window T−1 vs none",
  );
});

gpuTest("model configs: rope_theta 1e6", async () => {
  // head_dim 16 so that several frequencies depend visibly on theta.
  const config = tinyConfig({ ropeTheta: 1e6, numHeads: 2, numKvHeads: 1, headDim: 16 });
  const c = makeCase(config, 18);
  await checkCase(c, "rope_theta 1e6");
  assertDiscriminates(
    referenceLogits(c),
    referenceLogits({ ...c, config: { ...config, ropeTheta: 1e4 } }),
    "theta 1e6 vs 1e4",
  );
});

gpuTest("model configs: built by parseModelConfig from Llama and Mistral config.json", async () => {
  const common = {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 80,
    max_position_embeddings: 64,
    hidden_act: "silu",
  };
  // Llama 3.2-style: tied, rope_theta 5e5, GQA, no sliding window.
  const llama = parseModelConfig({
    ...common,
    model_type: "llama",
    num_key_value_heads: 2,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    pad_token_id: PAD,
  }, "llama/config.json");
  assert.equal(llama.slidingWindow, null);
  assert.equal(llama.tieWordEmbeddings, true);
  assert.equal(llama.headDim, 8);
  assert.equal(llama.ropeTheta, 500000);
  await checkCase(
    makeCase(llama, 19, { mask: [maskRow(T, "right"), maskRow(6, "left")] }),
    "parsed Llama",
  );

  // Mistral v0.1-style: untied, sliding window (here 5 < T), num_key_value_heads absent = MHA.
  const mistral = parseModelConfig({
    ...common,
    model_type: "mistral",
    sliding_window: 5,
    rms_norm_eps: 1e-6,
    rope_parameters: { rope_type: "default", rope_theta: 1000000 },
  }, "mistral/config.json");
  assert.equal(mistral.slidingWindow, 5);
  assert.equal(mistral.numKvHeads, 4);
  assert.equal(mistral.tieWordEmbeddings, false);
  assert.equal(mistral.ropeTheta, 1e6);
  await checkCase(makeCase(mistral, 20), "parsed Mistral");
});

gpuTest(
  "model configs: explicit position ids (generate()'s cumsum convention, non-uniform)",
  async () => {
    const config = tinyConfig({ padTokenId: PAD });
    const mask = [maskRow(T, "left"), maskRow(7, "left")];
    // generate(): position_ids = cumsum(mask) − 1, pads filled with 1.
    const cumsum = mask.map((row) => {
      let n = 0;
      return row.map((m) => m === 1 ? n++ : 1);
    });
    const c = makeCase(config, 21, { mask, positionIds: cumsum });
    const run = await checkCase(c, "cumsum positions");
    assert.deepEqual([...run.positionIds], cumsum.flat(), "uploadInputs keeps the given positions");
    // Same real logits as the default 0..T−1 positions (RoPE is relative).
    const V = config.vocabSize;
    assertClose(
      realRows(run.logits, mask, 2, T, V),
      realRows(referenceLogits({ ...c, positionIds: undefined }), mask, 2, T, V),
      F32_TOL,
      "cumsum vs default positions",
    );

    // Non-uniform positions (gaps, as after packing or dropped tokens) do change
    // the function; the GPU must follow them.
    const gaps = [
      Array.from({ length: T }, (_, t) => t < 6 ? t : t + 9),
      Array.from({ length: T }, (_, t) => 3 * t),
    ];
    const g = makeCase(config, 22, { positionIds: gaps });
    await checkCase(g, "non-uniform positions");
    assertDiscriminates(
      referenceLogits(g),
      referenceLogits({ ...g, positionIds: undefined }),
      "gapped vs default positions",
    );
  },
);

// Regression: the RoPE table used to stop at maxPositionEmbeddings and the
// kernel clamped larger ids; HF computes cos/sin for any position id, and
// CausalLM.ensurePositions now grows the table.
Deno.test({
  name: "model configs: positions ≥ max_position_embeddings match HF (no clamping)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await getDevice();
    const c = makeCase(tinyConfig({ maxPositionEmbeddings: 8 }), 23);
    await checkCase(c, "positions past max_position_embeddings");
  },
});
