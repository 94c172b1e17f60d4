import assert from "node:assert/strict";
import { join } from "node:path";
import { SentencePieceProcessor } from "@agnai/sentencepiece-js";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { decodeUtf8PerByte, loadTokenizer, PieceType, SentencePieceTokenizer } from "./mod.ts";

const models: Record<string, string[]> = {
  llama2: ["data", "tokenizers", "llama2", "tokenizer.model"],
  mistralV1: ["data", "tokenizers", "mistral", "tokenizer.model.v1"],
  mistralV3: ["data", "tokenizers", "mistral", "mistral_instruct_tokenizer_240323.model.v3"],
  stories260K: ["data", "stories260K", "tokenizer.model"],
};

async function both(key: string) {
  const path = sharedPathOrSkip(`${key} tokenizer`, ...models[key]!);
  if (!path) return undefined;
  const reference = new SentencePieceProcessor(); // the C++ library, compiled to WASM
  await reference.load(path);
  return { ours: await SentencePieceTokenizer.load(path), reference };
}

Deno.test("tokenizer: stories260K decodes the greedy reference text exactly", async () => {
  const dir = sharedPathOrSkip("stories260K", "data", "stories260K");
  if (!dir) return;
  const reference = JSON.parse(await Deno.readTextFile(join(dir, "reference_greedy_60.json")));
  const tok = await loadTokenizer(dir);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.decode(reference.generated_ids), reference.generated_text);
  assert.equal(tok.decode([1, ...reference.generated_ids]), reference.generated_text);
  // Re-encoding gives the sentencepiece tokenization of that text, which here is the generated ids.
  const sp = new SentencePieceProcessor();
  await sp.load(join(dir, "tokenizer.model"));
  const ids = tok.encode(reference.generated_text);
  assert.deepEqual(ids, sp.encodeIds(reference.generated_text));
  assert.deepEqual(ids, reference.generated_ids);
});

Deno.test("tokenizer: Llama 2 matches llama.cpp's published test-tokenizer-0-llama ids", async () => {
  const path = sharedPathOrSkip("llama2 tokenizer", ...models["llama2"]!);
  if (!path) return;
  const tok = await loadTokenizer(path);
  const published: [string, number[]][] = [
    ["", []],
    [" ", [259]],
    ["  ", [1678]],
    ["   ", [268]],
    ["\t", [29871, 12]],
    ["\n", [29871, 13]],
    ["\t\n", [29871, 12, 13]],
    ["Hello world", [15043, 3186]],
    [" Hello world", [29871, 15043, 3186]],
    ["Hello World", [15043, 2787]],
    [" Hello World", [29871, 15043, 2787]],
    [" Hello World!", [29871, 15043, 2787, 29991]],
    ["Hello, world!", [15043, 29892, 3186, 29991]],
    [" Hello, world!", [29871, 15043, 29892, 3186, 29991]],
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
    ["Hello", [15043]],
    [" Hello", [29871, 15043]],
    ["  Hello", [259, 15043]],
    ["   Hello", [1678, 15043]],
    ["    Hello", [268, 15043]],
    ["    Hello\n    Hello", [268, 15043, 13, 1678, 15043]],
    [" (", [29871, 313]],
  ];
  for (const [text, ids] of published) {
    assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
  }
  assert.deepEqual(tok.encode("Hello world", { addBos: true }), [1, 15043, 3186]);
  assert.deepEqual(tok.encode("Hello world", { addBos: true, addEos: true }), [1, 15043, 3186, 2]);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.equal(tok.unkId, 0);
  assert.equal(tok.padId, null);
  assert.equal(tok.idToPiece(15043), "▁Hello");
  assert.equal(tok.pieceToId("<0x0A>"), 13);
  assert.equal(tok.pieceToId("no such piece"), undefined);
  assert.throws(() => tok.decode([32000]), RangeError);
});

Deno.test("tokenizer: all four models agree with the sentencepiece library on varied text", async () => {
  const texts = [
    "Hello world",
    " Hello world\n\nfoo  bar 你好 🦙",
    "",
    " ",
    "   leading and trailing   ",
    "tab\there\r\nwindows line",
    "[INST] hi [/INST] <s> </s> [REFERENCE_DOC_3]x <0x0A>",
    "Ünïcödé ñ € 𝔘 😀😀 \u0000 \u200b e\u0301",
    "The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()",
    "ピカチュウ ☃ アラビア語 العربية हिन्दी",
    "▁literal▁spaces▁ ",
  ];
  let state = 7;
  const random = (n: number) => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n;
  const pool = [
    ..."  \n\t abcdeABCxyz0129.,!?'\"-éüñ你好世界😀🦙€ⅷ\u0301▁",
    "the",
    " of",
    "ing",
    "[INST]",
    "<s>",
    "[REFERENCE_DOC_1]",
    "<0x0A>",
  ];
  for (let k = 0; k < 300; k++) {
    let text = "";
    for (let i = random(40); i > 0; i--) text += pool[random(pool.length)];
    texts.push(text);
  }
  for (const key of Object.keys(models)) {
    const pair = await both(key);
    if (!pair) continue;
    const { ours, reference } = pair;
    for (const text of texts) {
      const ids = ours.encode(text);
      assert.deepEqual(ids, reference.encodeIds(text), `${key} encode ${JSON.stringify(text)}`);
      assert.equal(
        ours.decode(ids),
        reference.decodeIds(ids),
        `${key} decode ${JSON.stringify(text)}`,
      );
    }
    // Arbitrary id sequences: control, byte (incl. invalid UTF-8) and unknown pieces.
    for (let k = 0; k < 300; k++) {
      const ids = Array.from({ length: random(12) }, () => random(ours.vocabSize));
      assert.equal(ours.decode(ids), reference.decodeIds(ids), `${key} decode ${ids}`);
    }
  }
});

Deno.test("tokenizer: decode(encode(x)) == x for unicode, whitespace runs, newlines", async () => {
  for (const key of ["llama2", "mistralV1", "mistralV3"]) {
    const path = sharedPathOrSkip(`${key} tokenizer`, ...models[key]!);
    if (!path) continue;
    const tok = await loadTokenizer(path);
    for (
      const text of [
        "Hello world",
        "multiple   spaces\tand\ttabs\n\n\nnewlines",
        "emoji 🦙🔥👩‍👩‍👧 flags 🇫🇷",
        "中文字符和日本語のテキスト、한국어",
        "trailing space ",
        "math ∑∫√ and ℝ",
        "nul\u0000 and bell\u0007",
      ]
    ) {
      assert.equal(tok.decode(tok.encode(text)), text, `${key} ${JSON.stringify(text)}`);
      assert.equal(tok.decode(tok.encode(text, { addBos: true, addEos: true })), text);
    }
  }
});

Deno.test("tokenizer: Mistral v3 control tokens only when parseSpecial is on", async () => {
  const path = sharedPathOrSkip("mistral v3 tokenizer", ...models["mistralV3"]!);
  if (!path) return;
  const tok = await SentencePieceTokenizer.load(path);
  const inst = tok.pieceToId("[INST]")!;
  const endInst = tok.pieceToId("[/INST]")!;
  assert.equal(tok.model.pieces[inst]!.type, PieceType.CONTROL);
  const text = "[INST] What is BM25? [/INST]";
  const plain = tok.encode(text);
  assert.ok(!plain.includes(inst) && !plain.includes(endInst));
  const special = tok.encode(text, { parseSpecial: true, addBos: true });
  // Text between control tokens is encoded as a separate sentencepiece segment.
  assert.deepEqual(special, [1, inst, ...tok.encode(" What is BM25? "), endInst]);
  // The dummy-prefix ▁ of the first text piece is stripped, the user's own space is kept.
  assert.equal(tok.decode(special), " What is BM25? ");
  assert.equal(tok.decode(special, { skipSpecial: false }), "<s>[INST] What is BM25? [/INST]");
  // "<s>" in user text stays text unless asked.
  assert.ok(!tok.encode("a <s> b").includes(1));
  assert.deepEqual(tok.encode("<s>", { parseSpecial: true }), [1]);
});

Deno.test("tokenizer: utf-8 bytes decode per byte like sentencepiece", () => {
  assert.equal(decodeUtf8PerByte([0xe4, 0xbd, 0xa0]), "你");
  assert.equal(decodeUtf8PerByte([0xe4, 0xbd]), "\ufffd\ufffd");
  assert.equal(decodeUtf8PerByte([0xc0, 0x80, 0x41]), "\ufffd\ufffdA"); // overlong
  assert.equal(decodeUtf8PerByte([0xed, 0xa0, 0x80]), "\ufffd\ufffd\ufffd"); // surrogate
  assert.equal(decodeUtf8PerByte([0xf0, 0x9f, 0xa6, 0x99]), "🦙");
});

Deno.test("tokenizer: bad files and paths give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadTokenizer(join(dir, "missing.model")),
      /missing\.model: no such tokenizer/,
    );
    await assert.rejects(() => loadTokenizer(dir), /no tokenizer\.model in this directory/);
    await Deno.writeTextFile(join(dir, "tokenizer.json"), "{}");
    await assert.rejects(() => loadTokenizer(dir), /not a tokenizer\.json \(no "model" object\)/);
    const bad = join(dir, "tokenizer.model");
    await Deno.writeFile(bad, new Uint8Array([0x0a, 0x50, 0x01]));
    await assert.rejects(
      () => loadTokenizer(bad),
      /tokenizer\.model ModelProto: malformed protobuf at byte 2: field of 80 bytes runs past the end/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer: TREC DL19 passages encode identically to sentencepiece", async () => {
  const file = sharedPathOrSkip("trec-dl19", "data", "trec-dl19");
  const pair = await both("llama2");
  if (!file || !pair) return;
  const entries = [...Deno.readDirSync(file)].filter((e) => e.name.endsWith(".json"));
  if (entries.length === 0) return;
  const runs = JSON.parse(await Deno.readTextFile(join(file, entries[0]!.name))) as {
    hits: { content: string }[];
  }[];
  const passages = runs.flatMap((q) => q.hits.map((h) => h.content)).slice(0, 400);
  for (const passage of passages) {
    assert.deepEqual(pair.ours.encode(passage), pair.reference.encodeIds(passage));
  }
});
