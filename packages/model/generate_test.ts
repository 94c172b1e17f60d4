import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { gpuTest } from "@irforge/tensor/testing";
import { generate, pickToken } from "./generate.ts";
import { loadCausalLM } from "./load.ts";
import { loadTokenizer } from "./tokenizer/load.ts";
import { causalInputs, disposeInputs } from "./model_inputs.ts";

gpuTest(
  "stories260K: greedy decoding from BOS reproduces the transformers reference exactly",
  async () => {
    const dir = sharedPathOrSkip("stories260K greedy generation", "data", "stories260K");
    if (!dir) return;
    const reference = JSON.parse(await Deno.readTextFile(`${dir}/reference_greedy_60.json`));
    const model = await loadCausalLM(dir);
    const tokenizer = await loadTokenizer(dir);
    const ids = await generate(model, [tokenizer.bosId!], { maxNewTokens: 60, stopTokens: [] });
    assert.deepEqual(ids, reference.generated_ids);
    assert.equal(tokenizer.decode(ids), reference.generated_text);
    model.dispose();
  },
);

gpuTest(
  "KV-cache decoding gives the same logits as a full forward (GQA, sliding window)",
  async () => {
    const dir = sharedPathOrSkip("stories260K cache check", "data", "stories260K");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    // A window shorter than the sequence exercises the cache's window slice.
    (model.config as { slidingWindow: number | null }).slidingWindow = 5;
    const prompt = [1, 403, 407, 261];
    const produced = await generate(model, prompt, { maxNewTokens: 6, stopTokens: [] });
    // Greedy tokens from the cache must equal argmax of the full forward at each step.
    const all = [...prompt, ...produced];
    const inputs = causalInputs([all], { window: 5 });
    const { logits } = model.forward(inputs);
    const values = await logits!.toArray();
    const V = model.config.vocabSize;
    for (let n = 0; n < produced.length; n++) {
      const row = values.subarray((prompt.length - 1 + n) * V, (prompt.length + n) * V);
      assert.equal(pickToken(row, {}, Math.random), produced[n], `step ${n}`);
    }
    logits!.dispose();
    disposeInputs(inputs);
    model.dispose();
  },
);

Deno.test("pickToken: greedy, top-k 1 and top-p tiny all pick the argmax; sampling is seeded", () => {
  const logits = [0.1, 2.5, -1, 2.4];
  assert.equal(pickToken(logits, {}, Math.random), 1);
  assert.equal(pickToken(logits, { temperature: 1, topK: 1 }, Math.random), 1);
  assert.equal(pickToken(logits, { temperature: 1, topP: 1e-6 }, Math.random), 1);
  const counts = [0, 0, 0, 0];
  let s = 7;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < 4000; i++) counts[pickToken(logits, { temperature: 1 }, rand)]!++;
  // p(1)/p(3) = e^0.1 ≈ 1.105; index 2 is rare (≈ 1.6%).
  assert.ok(counts[1]! > counts[3]! * 0.95 && counts[1]! < counts[3]! * 1.3, `${counts}`);
  assert.ok(counts[2]! < 150, `${counts}`);
});
