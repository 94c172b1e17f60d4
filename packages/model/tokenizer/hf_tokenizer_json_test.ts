import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import {
  HfJsonTokenizer,
  loadTokenizer,
  parseSentencePieceModel,
  sentencePieceSpecialTokens,
  SentencePieceTokenizer,
  sentencePieceToTokenizerJson,
} from "./mod.ts";

const models: Record<string, string[]> = {
  llama2: ["data", "tokenizers", "llama2", "tokenizer.model"],
  mistralV1: ["data", "tokenizers", "mistral", "tokenizer.model.v1"],
  mistralV3: ["data", "tokenizers", "mistral", "mistral_instruct_tokenizer_240323.model.v3"],
  stories260K: ["data", "stories260K", "tokenizer.model"],
};

/** The SentencePiece tokenizer of `key` and its tokenizer.json twin, written to a temp dir and loaded back. */
async function pair(key: string) {
  const path = sharedPathOrSkip(`${key} tokenizer`, ...models[key]!);
  if (!path) return undefined;
  const model = parseSentencePieceModel(await Deno.readFile(path), path);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "tokenizer.json"),
      JSON.stringify(sentencePieceToTokenizerJson(model)),
    );
    const special = sentencePieceSpecialTokens(model);
    await Deno.writeTextFile(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({
        bos_token: special.bos,
        eos_token: { content: special.eos, special: true },
        unk_token: special.unk,
        pad_token: special.pad,
      }),
    );
    const json = await loadTokenizer(dir); // a directory with tokenizer.json goes to HfJsonTokenizer
    assert.ok(json instanceof HfJsonTokenizer);
    return { sp: new SentencePieceTokenizer(model, path), json };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function variedTexts(): string[] {
  const texts = [
    "Hello world",
    " Hello world\n\nfoo  bar 你好 🦙",
    "",
    " ",
    "   leading and trailing   ",
    "tab\there\r\nwindows line",
    "[INST] hi [/INST] <s> </s> <0x0A>",
    "Ünïcödé ñ € 𝔘 😀😀 \u0000 \u200b e\u0301",
    "The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()",
    "ピカチュウ ☃ アラビア語 العربية हिन्दी",
    "▁literal▁spaces▁ ",
    "\n\n\n    indented code\n\tdef f(x):\n\t\treturn x  # 👩‍👩‍👧‍👦 🏳️‍🌈",
    "a".repeat(600) + " " + "ab".repeat(300),
  ];
  let state = 11;
  const random = (n: number) => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n;
  const pool = [
    ..."  \n\t abcdeABCxyz0129.,!?'\"-éüñ你好世界😀🦙€ⅷ\u0301▁",
    "the",
    " of",
    "ing",
    "[INST]",
    "<s>",
    "</s>",
    "<0x0A>",
    "\r\n",
    "   ",
  ];
  for (let k = 0; k < 300; k++) {
    let text = "";
    for (let i = random(40); i > 0; i--) text += pool[random(pool.length)];
    texts.push(text);
  }
  return texts;
}

Deno.test("tokenizer.json: Llama 2 converted tokenizer matches llama.cpp's published ids", async () => {
  const both = await pair("llama2");
  if (!both) return;
  const { json } = both;
  assert.deepEqual(json.encode("Hello world", { addBos: true }), [1, 15043, 3186]);
  assert.deepEqual(json.encode("Hello world", { addBos: true, addEos: true }), [1, 15043, 3186, 2]);
  const published: [string, number[]][] = [
    ["", []],
    [" ", [259]],
    ["  ", [1678]],
    ["   ", [268]],
    ["\t", [29871, 12]],
    ["\n", [29871, 13]],
    ["\t\n", [29871, 12, 13]],
    [" Hello world", [29871, 15043, 3186]],
    [" Hello World!", [29871, 15043, 2787, 29991]],
    ["Hello, world!", [15043, 29892, 3186, 29991]],
    [" this is 🦙.cpp", [29871, 445, 338, 29871, 243, 162, 169, 156, 29889, 8223]],
    ["w048 7tuijk dsdfhu", [
      281,
      29900,
      29946,
      29947,
      29871,
      29955,
      9161,
      13535,
      18031,
      2176,
      6905,
    ]],
    ["нещо на Български", [1538, 4851, 665, 1386, 29713, 1305]],
    ["    Hello\n    Hello", [268, 15043, 13, 1678, 15043]],
    [" (", [29871, 313]],
  ];
  for (const [text, ids] of published) {
    assert.deepEqual(json.encode(text), ids, JSON.stringify(text));
  }
  assert.equal(json.vocabSize, 32000);
  assert.equal(json.bosId, 1);
  assert.equal(json.eosId, 2);
  assert.equal(json.unkId, 0);
  assert.equal(json.padId, null);
  assert.equal(json.idToPiece(15043), "▁Hello");
  assert.equal(json.pieceToId("<0x0A>"), 13);
  assert.equal(json.pieceToId("no such piece"), undefined);
  assert.equal(json.decode([1, 15043, 3186, 2]), "Hello world");
  assert.equal(json.decode([]), "");
  assert.throws(() => json.decode([32000]), RangeError);
  assert.throws(() => json.idToPiece(-1), RangeError);
  // Control tokens in text: plain characters unless parseSpecial.
  assert.deepEqual(json.encode("a</s>b"), both.sp.encode("a</s>b"));
  assert.deepEqual(json.encode("a</s>b", { parseSpecial: true }), [263, 2, 289]);
  assert.deepEqual(
    json.encode("a</s>b", { parseSpecial: true }),
    both.sp.encode("a</s>b", { parseSpecial: true }),
  );
  // Known difference: HF lists <unk> among the special added tokens, so parseSpecial matches it
  // in text; SentencePiece only matches control and user-defined pieces.
  assert.deepEqual(json.encode("<unk>", { parseSpecial: true }), [0]);
  assert.deepEqual(both.sp.encode("<unk>", { parseSpecial: true }), [529, 2960, 29958]);
});

Deno.test("tokenizer.json: converted tokenizers encode and decode like SentencePiece", async () => {
  const texts = variedTexts();
  for (const key of Object.keys(models)) {
    const both = await pair(key);
    if (!both) continue;
    const { sp, json } = both;
    assert.equal(json.vocabSize, sp.vocabSize, key);
    for (const text of texts) {
      const ids = sp.encode(text);
      assert.deepEqual(json.encode(text), ids, `${key} encode ${JSON.stringify(text)}`);
      assert.deepEqual(
        json.encode(text, { parseSpecial: true, addBos: true }),
        sp.encode(text, { parseSpecial: true, addBos: true }),
        `${key} encode parseSpecial ${JSON.stringify(text)}`,
      );
      assert.equal(json.decode(ids), sp.decode(ids), `${key} decode ${JSON.stringify(text)}`);
    }
  }
});

Deno.test("tokenizer.json: TREC DL19 passages encode identically to SentencePiece", async () => {
  const dir = sharedPathOrSkip("trec-dl19", "data", "trec-dl19");
  const both = await pair("llama2");
  if (!dir || !both) return;
  const entries = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".json"));
  if (entries.length === 0) return;
  const runs = JSON.parse(await Deno.readTextFile(join(dir, entries[0]!.name))) as {
    hits: { content: string }[];
  }[];
  const passages = runs.flatMap((q) => q.hits.map((h) => h.content)).slice(0, 300);
  assert.ok(passages.length > 0);
  for (const passage of passages) {
    assert.deepEqual(both.json.encode(passage), both.sp.encode(passage));
  }
});

Deno.test("tokenizer.json: bad files give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "tokenizer.json");
    await Deno.writeTextFile(file, "{ not json");
    await assert.rejects(() => loadTokenizer(file), /tokenizer\.json: cannot read tokenizer\.json/);
    await Deno.writeTextFile(file, "{}");
    await assert.rejects(() => loadTokenizer(dir), /not a tokenizer\.json \(no "model" object\)/);
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: [["a", "b"]] },
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        decoder: null,
      }),
    );
    await Deno.writeTextFile(join(dir, "tokenizer_config.json"), `{"bos_token": "<s>"}`);
    await assert.rejects(() => loadTokenizer(dir), /special token "<s>" is not in the vocabulary/);
    await Deno.writeTextFile(join(dir, "tokenizer_config.json"), `{"bos_token": null}`);
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.encode("abba", { addBos: true }), [2, 1, 0]);
    assert.equal(tok.bosId, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
