import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import {
  backward,
  memoryStats,
  randnArray,
  releaseTape,
  tapeStats,
  Tensor,
  zeroGrad,
} from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { CausalLM, type ForwardOptions, type ForwardResult } from "./causal_lm.ts";
import { forwardWithCheckpointing } from "./checkpointing.ts";
import { loadCausalLM } from "./load.ts";
import { LoraAdapter, loraTargetPaths, projectionShape } from "./lora/adapter.ts";
import { loraConfig } from "./lora/config.ts";
import { causalInputs, disposeInputs, type ModelInputs } from "./model_inputs.ts";
import { PARITY_TOLERANCE, relativeDifference } from "./parity.ts";
import { openCheckpoint } from "./safetensors/checkpoint.ts";

type Forward = (model: CausalLM, inputs: ModelInputs, options?: ForwardOptions) => ForwardResult;
const plainForward: Forward = (model, inputs, options) => model.forward(inputs, options);

interface Outcome {
  loss: number;
  logits: Float32Array;
  grads: Map<string, Float32Array>;
  savedBytes: number;
  liveBytes: number;
}

/** The fixture's batch (ids, labels, attention mask) as host arrays. */
async function fixtureBatch(dir: string) {
  const fixture = await openCheckpoint(join(dir, "fixture.safetensors"));
  try {
    const [batch, length] = fixture.info("input_ids").shape as [number, number];
    const flat = Int32Array.from(await fixture.read("input_ids", { as: "native" }) as Int32Array);
    const labels = fixture.has("labels")
      ? Int32Array.from(await fixture.read("labels", { as: "native" }) as Int32Array)
      : flat;
    const mask = fixture.has("attention_mask")
      ? Int32Array.from(await fixture.read("attention_mask", { as: "native" }) as Int32Array)
      : undefined;
    const rows = (a: Int32Array) =>
      Array.from({ length: batch }, (_, b) => [...a.subarray(b * length, (b + 1) * length)]);
    const expectedGrads = new Map<string, Float32Array>();
    for (const name of fixture.names()) {
      if (name.startsWith("grad.")) {
        expectedGrads.set(name.slice(5), await fixture.read(name, { as: "f32" }));
      }
    }
    return {
      batch,
      length,
      ids: rows(flat),
      attentionMask: mask ? rows(mask) : undefined,
      labels,
      expectedGrads,
    };
  } finally {
    fixture.close();
  }
}

async function lossAndGrads(
  model: CausalLM,
  data: Awaited<ReturnType<typeof fixtureBatch>>,
  forward: Forward,
): Promise<Outcome> {
  const inputs = causalInputs(data.ids, {
    attentionMask: data.attentionMask,
    window: model.config.slidingWindow,
  });
  const targets = Tensor.fromArray(
    CausalLM.shiftedTargets(data.labels, data.batch, data.length),
    [data.batch * data.length],
    "i32",
  );
  const before = memoryStats().liveBytes;
  const { logits } = forward(model, inputs);
  const loss = CausalLM.lmLoss(logits!, targets);
  const liveBytes = memoryStats().liveBytes - before;
  const { savedBytes } = tapeStats();
  backward(loss);
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.params) {
    if (p.grad) grads.set(name, await p.grad.toArray() as Float32Array);
  }
  const outcome = {
    loss: await loss.item(),
    logits: await logits!.toArray() as Float32Array,
    grads,
    savedBytes,
    liveBytes,
  };
  zeroGrad(model.params.values());
  for (const t of [logits!, loss, targets]) t.dispose();
  disposeInputs(inputs);
  return outcome;
}

gpuTest(
  "checkpointing: hf-mistral-tiny gradients equal the plain forward's and transformers'",
  async () => {
    const dir = sharedPathOrSkip("HF Mistral fixture", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    model.setTrainable(true);
    const data = await fixtureBatch(dir);
    const plain = await lossAndGrads(model, data, plainForward);
    const ckpt = await lossAndGrads(model, data, forwardWithCheckpointing);
    assert.equal(ckpt.loss, plain.loss);
    assert.deepEqual(ckpt.logits, plain.logits);
    assert.equal(ckpt.grads.size, 21);
    assert.equal(plain.grads.size, 21);
    let worst = 0;
    for (const [name, g] of plain.grads) {
      const err = relativeDifference(ckpt.grads.get(name)!, g);
      worst = Math.max(worst, err);
      assert.ok(err <= 1e-6, `${name}: checkpointed gradient differs by ${err}`);
      // And both agree with transformers' float64 gradients.
      const expected = data.expectedGrads.get(name);
      assert.ok(expected, `fixture has grad.${name}`);
      assert.ok(relativeDifference(ckpt.grads.get(name)!, expected) <= PARITY_TOLERANCE.grad, name);
    }
    console.log(
      `checkpointing: worst grad rel diff ${worst}; tape saved ${ckpt.savedBytes} B vs ${plain.savedBytes} B; live after forward ${ckpt.liveBytes} B vs ${plain.liveBytes} B`,
    );
    assert.ok(ckpt.savedBytes < plain.savedBytes);
    assert.ok(ckpt.liveBytes < plain.liveBytes);
    model.dispose();
  },
);

gpuTest("checkpointing: layer parameters get gradients when the embedding is frozen", async () => {
  const dir = sharedPathOrSkip("HF Mistral fixture", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  model.setTrainable(true);
  // The layers' input then needs no gradient, as with LoRA on a frozen base.
  model.params.get("model.embed_tokens.weight")!.requiresGrad = false;
  const data = await fixtureBatch(dir);
  const plain = await lossAndGrads(model, data, plainForward);
  const ckpt = await lossAndGrads(model, data, forwardWithCheckpointing);
  assert.equal(ckpt.grads.size, 20);
  assert.ok(!ckpt.grads.has("model.embed_tokens.weight"));
  for (const [name, g] of plain.grads) {
    assert.ok(relativeDifference(ckpt.grads.get(name)!, g) <= 1e-6, name);
  }
  // Scores of one layer (left un-checkpointed) come out as in the plain forward.
  const inputs = causalInputs(data.ids, { attentionMask: data.attentionMask });
  const rows = data.ids.map(() => [0, 1]);
  const options: ForwardOptions = { attentionScores: { layer: 1, rows }, output: "hidden" };
  const a = model.forward(inputs, options);
  const b = forwardWithCheckpointing(model, inputs, options);
  assert.deepEqual(await b.attentionScores!.toArray(), await a.attentionScores!.toArray());
  assert.deepEqual(await b.hidden!.toArray(), await a.hidden!.toArray());
  for (const t of [a.attentionScores!, a.hidden!, b.attentionScores!, b.hidden!]) t.dispose();
  releaseTape();
  assert.throws(
    () => forwardWithCheckpointing(model, inputs, { attentionScores: { layer: 2, rows } }),
    /attention scores asked for layer 2, the model has 2/,
  );
  disposeInputs(inputs);
  model.dispose();
});

gpuTest(
  "checkpointing: LoRA on a frozen base gives the same adapter gradients, with dropout too",
  async () => {
    const dir = sharedPathOrSkip("HF Mistral fixture", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    const data = await fixtureBatch(dir);
    const runWith = async (dropout: number, forward: Forward) => {
      const config = loraConfig({ targetModules: ["q_proj", "v_proj", "down_proj"], r: 4 });
      config.loraDropout = dropout;
      const arrays = new Map<string, { a: Float32Array; b: Float32Array }>();
      loraTargetPaths(model.config, config).forEach((path, i) => {
        const [out, inFeatures] = projectionShape(model.config, path);
        arrays.set(path, {
          a: Float32Array.from(randnArray(config.r * inFeatures, 40 + i, 0, 0.2)),
          b: Float32Array.from(randnArray(out * config.r, 80 + i, 0, 0.2)),
        });
      });
      const adapter = LoraAdapter.fromArrays(config, arrays, 5).attach(model);
      adapter.training = true;
      try {
        const inputs = causalInputs(data.ids, { attentionMask: data.attentionMask });
        const targets = Tensor.fromArray(
          CausalLM.shiftedTargets(data.labels, data.batch, data.length),
          [data.batch * data.length],
          "i32",
        );
        try {
          const { logits } = forward(model, inputs);
          const loss = CausalLM.lmLoss(logits!, targets);
          backward(loss);
          logits!.dispose();
          loss.dispose();
          const grads = new Map<string, Float32Array>();
          for (const [name, p] of adapter.parameters()) {
            grads.set(name, await p.grad!.toArray() as Float32Array);
          }
          for (const p of model.params.values()) assert.equal(p.grad, null);
          return grads;
        } finally {
          targets.dispose();
          disposeInputs(inputs);
        }
      } finally {
        model.adapter = null;
        adapter.dispose();
      }
    };
    const plain = await runWith(0, plainForward);
    const ckpt = await runWith(0, forwardWithCheckpointing);
    assert.equal(ckpt.size, 12);
    for (const [name, g] of plain) {
      assert.ok(g.some((v) => v !== 0), name);
      assert.deepEqual(ckpt.get(name), g, name);
    }
    // LoRA dropout draws seeds from a counter; the adapter rewinds it for the recomputation,
    // so the checkpointed gradients use the same masks as the plain run.
    const plainDropout = await runWith(0.1, plainForward);
    const ckptDropout = await runWith(0.1, forwardWithCheckpointing);
    for (const [name, g] of plainDropout) {
      assert.notDeepEqual(g, plain.get(name), `${name}: dropout changed nothing`);
      assert.deepEqual(ckptDropout.get(name), g, name);
    }
    model.dispose();
  },
);
