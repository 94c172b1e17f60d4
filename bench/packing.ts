/**
 * Packing speed-up on real length distributions: HotpotQA SFT records
 * (hard-500, all context paragraphs, and dev-100 with supporting
 * paragraphs) and TREC DL19 BM25 passages, tokenised with the
 * deterministic HashWordTokenizer (word/punctuation level, a proxy for a
 * subword tokenizer). Reports slots needed when padding (per batch of 8 in
 * file order, and to `max_seq_length`) versus packing (next-fit,
 * first-fit-decreasing), and the time packing takes.
 *
 * Run: deno run -A bench/packing.ts
 *
 * @module
 */

import {
  HashWordTokenizer,
  hotpotToSft,
  packingReport,
  type PackingStrategy,
  paddingReport,
  planPacking,
  readCandidates,
  readHotpotQa,
  sharedPathOrSkip,
  tokenizeChat,
} from "@irforge/data";

const tokenizer = new HashWordTokenizer();

async function distributions(): Promise<Array<{ name: string; lengths: number[]; max: number }>> {
  const out: Array<{ name: string; lengths: number[]; max: number }> = [];
  const hard = sharedPathOrSkip(
    "HotpotQA hard-500 lengths",
    "data",
    "hotpotqa-hard-500",
    "test.json",
  );
  if (hard) {
    const examples = await readHotpotQa(hard);
    const lengths = examples.map((e) =>
      tokenizeChat(tokenizer, hotpotToSft(e, { context: "all" }).messages, { maxSeqLength: 2048 })
        .inputIds.length
    );
    out.push({ name: "HotpotQA hard-500 SFT (all paragraphs)", lengths, max: 2048 });
    out.push({ name: "HotpotQA hard-500 SFT (all paragraphs)", lengths, max: 8192 });
  }
  const dev = sharedPathOrSkip(
    "HotpotQA dev-100 lengths",
    "data",
    "hotpotqa-dev-100",
    "hotpot_dev_distractor_v1.json",
  );
  if (dev) {
    const examples = await readHotpotQa(dev);
    const lengths = examples.map((e) =>
      tokenizeChat(tokenizer, hotpotToSft(e).messages).inputIds.length
    );
    out.push({ name: "HotpotQA dev-100 SFT (supporting paragraphs)", lengths, max: 1024 });
  }
  const dl = sharedPathOrSkip(
    "DL19 passage lengths",
    "data",
    "trec-dl19",
    "retrieve_results_dl19.json",
  );
  if (dl) {
    const lists = await readCandidates(dl);
    const lengths = lists.flatMap((l) =>
      l.hits.map((h) => Math.min(256, tokenizer.encode(h.content).length + 2))
    );
    out.push({ name: "TREC DL19 BM25 passages (4,300)", lengths, max: 256 });
  }
  return out;
}

function time(fn: () => void, repeats: number): number {
  fn();
  const start = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - start) / repeats;
}

const rows: string[] = [];
for (const { name, lengths, max } of await distributions()) {
  const stats = [...lengths].sort((a, b) => a - b);
  const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
  console.log(
    `\n${name}: ${lengths.length} sequences, tokens mean ${mean.toFixed(1)}, median ${
      stats[stats.length >> 1]
    }, max ${stats[stats.length - 1]}; max_seq_length ${max}`,
  );
  const batch = paddingReport(lengths, 8);
  const toMax = {
    slots: lengths.length * max,
    efficiency: batch.realTokens / (lengths.length * max),
  };
  console.log(
    `  pad per batch of 8: ${batch.slots} slots (efficiency ${
      (100 * batch.efficiency).toFixed(1)
    }%)`,
  );
  console.log(
    `  pad to max_seq_length: ${toMax.slots} slots (efficiency ${
      (100 * toMax.efficiency).toFixed(1)
    }%)`,
  );
  for (const strategy of ["next-fit", "first-fit-decreasing"] as PackingStrategy[]) {
    const plan = planPacking(lengths, max, strategy);
    const report = packingReport(lengths, plan);
    const ms = time(() => planPacking(lengths, max, strategy), 20);
    console.log(
      `  ${strategy}: ${report.rows} rows, ${report.slots} slots (efficiency ${
        (100 * report.efficiency).toFixed(1)
      }%), ${(batch.slots / report.slots).toFixed(2)}× vs batch padding, ${
        (toMax.slots / report.slots).toFixed(2)
      }× vs padding to max (slot ratio); plan ${ms.toFixed(3)} ms`,
    );
    rows.push(
      `| ${name} | ${max} | ${strategy} | ${report.rows} | ${
        (100 * report.efficiency).toFixed(1)
      }% | ${(batch.slots / report.slots).toFixed(2)}× | ${
        (toMax.slots / report.slots).toFixed(2)
      }× | ${ms.toFixed(3)} ms |`,
    );
  }
}
console.log(
  "\n| lengths | max_seq_length | strategy | rows | efficiency | slots padded/batch-8 ÷ packed | slots padded-to-max ÷ packed | plan time |\n|---|---|---|---|---|---|---|---|",
);
console.log(rows.join("\n"));
