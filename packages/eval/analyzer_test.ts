import assert from "node:assert/strict";
import { Analyzer, TOKEN_SEPARATOR } from "./analyzer.ts";
import { LUCENE_ENGLISH_STOP_WORDS } from "./stop_words.ts";

Deno.test("analyzer: lowercase, split on non-alphanumerics, stop words, Porter", () => {
  const analyzer = new Analyzer();
  // "the"/"they" are stop words; "aren't" splits into "aren" + "t".
  assert.deepEqual(analyzer.analyze("The Running dogs' OWNERS, aren't they?"), [
    "run",
    "dog",
    "owner",
    "aren",
    "t",
  ]);
  assert.deepEqual(analyzer.analyze("relational databases: generalizations"), [
    "relat",
    "databas",
    "gener",
  ]);
  // Digits are kept, punctuation inside numbers splits.
  assert.deepEqual(analyzer.analyze("Mach 3.5 flow"), ["mach", "3", "5", "flow"]);
  // Unicode letters are letters.
  assert.deepEqual(new Analyzer({ stem: false }).analyze("Café–Über naïve"), [
    "café",
    "über",
    "naïve",
  ]);
  assert.deepEqual(analyzer.analyze(" ... "), []);
  assert.deepEqual(analyzer.analyze("to be or not to be"), []);
});

Deno.test("analyzer: Lucene's 33 English stop words, options", () => {
  assert.equal(LUCENE_ENGLISH_STOP_WORDS.size, 33);
  assert.ok(TOKEN_SEPARATOR.test("-"));
  assert.deepEqual(new Analyzer({ stopWords: new Set() }).analyze("the cats"), ["the", "cat"]);
  assert.deepEqual(new Analyzer({ stem: false }).analyze("the cats"), ["cats"]);
});
