import assert from "node:assert/strict";
import { GenerateFlagError, generationBudget, parseGenerateFlags } from "./generate_options.ts";

Deno.test("parseGenerateFlags: defaults, and each out-of-range value named in one sentence", () => {
  assert.deepEqual(parseGenerateFlags({}), {
    maxNewTokens: 64,
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
  });
  assert.deepEqual(
    parseGenerateFlags({
      "max-new-tokens": "5",
      temperature: "0.7",
      "top-k": "40",
      "top-p": "0.9",
    }),
    { maxNewTokens: 5, temperature: 0.7, topK: 40, topP: 0.9, seed: 0 },
  );
  const cases: [Record<string, string>, RegExp][] = [
    [{ temperature: "-1" }, /^--temperature must be 0 \(greedy\) or positive, got -1$/],
    [{ "top-p": "5" }, /^--top-p must be in \(0, 1\], got 5$/],
    [{ "top-p": "0" }, /^--top-p must be in \(0, 1\], got 0$/],
    [{ "top-k": "0" }, /^--top-k must be an integer ≥ 1 .*got 0$/],
    [{ "max-new-tokens": "-1" }, /^--max-new-tokens must be a positive integer, got -1$/],
    [{ "max-new-tokens": "2.5" }, /^--max-new-tokens must be a positive integer, got 2\.5$/],
    [{ seed: "x" }, /^--seed: "x" is not a number$/],
  ];
  for (const [flags, message] of cases) {
    assert.throws(
      () => parseGenerateFlags(flags),
      (e: unknown) => e instanceof GenerateFlagError && message.test(e.message),
      JSON.stringify(flags),
    );
  }
});

Deno.test("generationBudget: cuts the request at max_position_embeddings", () => {
  assert.deepEqual(generationBudget(10, 20, 512), { maxNewTokens: 20, capped: false });
  assert.deepEqual(generationBudget(10, 600, 512), { maxNewTokens: 502, capped: true });
  assert.deepEqual(generationBudget(511, 5, 512), { maxNewTokens: 1, capped: true });
  assert.throws(() => generationBudget(512, 5, 512), /prompt is 512 tokens .* 512; shorten/);
});
