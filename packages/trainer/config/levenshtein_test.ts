import assert from "node:assert/strict";
import { closestMatch, damerauLevenshtein } from "./levenshtein.ts";

Deno.test("damerauLevenshtein: textbook distances", () => {
  assert.equal(damerauLevenshtein("", ""), 0);
  assert.equal(damerauLevenshtein("abc", ""), 3);
  assert.equal(damerauLevenshtein("", "abcd"), 4);
  assert.equal(damerauLevenshtein("kitten", "sitting"), 3);
  assert.equal(damerauLevenshtein("flaw", "lawn"), 2);
  // One adjacent transposition is one edit (plain Levenshtein says 2).
  assert.equal(damerauLevenshtein("learnign_rate", "learning_rate"), 1);
  assert.equal(damerauLevenshtein("ca", "ac"), 1);
  // Optimal string alignment: a transposed pair is not edited again.
  assert.equal(damerauLevenshtein("ca", "abc"), 3);
});

Deno.test("damerauLevenshtein: symmetric and bounded by the longer length", () => {
  const words = ["lora_r", "lora_alpha", "lr", "learning_rate", "seed", "max_steps", ""];
  for (const a of words) {
    for (const b of words) {
      const d = damerauLevenshtein(a, b);
      assert.equal(d, damerauLevenshtein(b, a));
      assert.ok(d <= Math.max(a.length, b.length));
      assert.equal(d === 0, a === b);
    }
  }
});

Deno.test("closestMatch: picks the nearest candidate, case-insensitively", () => {
  const keys = ["learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio"];
  assert.equal(closestMatch("learnin_rate", keys), "learning_rate");
  assert.equal(closestMatch("Warmup_Step", keys), "warmup_steps");
  assert.equal(closestMatch("warmup_ration", keys), "warmup_ratio");
  assert.equal(closestMatch("x", []), undefined);
});
