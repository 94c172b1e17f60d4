/**
 * BlockRank's auxiliary attention loss (google-deepmind BlockRank,
 * `compute_auxiliary_attention_loss` in nilesh2797/BlockRank
 * `src/blockrank/losses.py`):
 *
 * 1. take the pre-softmax attention scores of the answer-prefix token and
 *    the token before it (`S`: `[B, H, R=2, T]`, masked entries −inf);
 * 2. keep only document tokens (instruction and query blocks excluded) and
 *    softmax jointly over all of them, per head and row;
 * 3. a document's score = Σ of its tokens' probabilities, averaged over heads
 *    and the R rows (`bracket_attn.mean(dim=(1, 2)).sum(dim=-1)`);
 * 4. logits = score / τ (`aux_temperature`, default 0.05 as BlockRank), and
 *    loss = −mean_b( logsumexp_{pos} − logsumexp_{all docs} );
 * 5. metric `attention_accuracy`: fraction of items whose argmax document
 *    (first on ties, as `torch.argmax`) is a positive.
 *
 * Documents are given by token spans (`[start, end)`, disjoint) per item, so
 * items may differ in document count and length; BlockRank's fixed-size
 * blocks are the special case. Implemented as a gather of document columns,
 * softmax, then a segment sum by a matmul with a 0/1 token→document matrix.
 *
 * @module
 */

import {
  add,
  concat,
  indexSelect,
  matmul,
  mean,
  reshape,
  scale,
  slice,
  softmax,
  sub,
  Tensor,
  tidy,
} from "@irforge/tensor";
import { checkRank, logSumExp, MASKED, need, upload } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `blockrank_aux`. */
export const blockrankAuxOptions = defineOptions({
  temperature: {
    kind: "number",
    greaterThan: 0,
    default: 0.05,
    description: "τ (aux_temperature): document scores are divided by it",
  },
});

/** Checks spans and positives of item `b`; returns the document token indices. */
function documentTokens(
  spans: ReadonlyArray<readonly [number, number]>,
  positives: ReadonlyArray<number>,
  T: number,
  b: number,
): Int32Array {
  if (spans.length === 0) throw new Error(`loss "blockrank_aux": item ${b} has no documents`);
  if (positives.length === 0) {
    throw new Error(`loss "blockrank_aux": item ${b} (query ${b}) has no positive document`);
  }
  for (const p of positives) {
    if (!Number.isInteger(p) || p < 0 || p >= spans.length) {
      throw new Error(
        `loss "blockrank_aux": positives[${b}] has ${p}, not a document index in [0, ${spans.length})`,
      );
    }
  }
  const sorted = spans.map(([s, e], d) => ({ s, e, d })).sort((x, y) => x.s - y.s);
  let last = 0;
  for (const { s, e, d } of sorted) {
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > T || s > e) {
      throw new Error(
        `loss "blockrank_aux": documentSpans[${b}][${d}] = [${s}, ${e}) is not a span within [0, ${T})`,
      );
    }
    if (s < last) {
      throw new Error(`loss "blockrank_aux": documentSpans[${b}][${d}] overlaps another`);
    }
    last = e;
  }
  const tokens: number[] = [];
  for (const [s, e] of spans) for (let t = s; t < e; t++) tokens.push(t);
  if (tokens.length === 0) {
    throw new Error(`loss "blockrank_aux": item ${b} has no document tokens`);
  }
  return Int32Array.from(tokens);
}

/** Creates a `blockrank_aux` loss. Inputs: `attentionScores`, `documentSpans`, `positives`. */
export function blockrankAux(options: ResolvedOptions<typeof blockrankAuxOptions>): Loss {
  return {
    name: "blockrank_aux",
    options,
    async compute(inputs: LossInputs): Promise<LossOutput> {
      const S = need(inputs, "attentionScores", "blockrank_aux");
      checkRank(S, 4, "attentionScores", "blockrank_aux");
      const [B, H, R, T] = S.shape as [number, number, number, number];
      const spans = need(inputs, "documentSpans", "blockrank_aux");
      const positives = need(inputs, "positives", "blockrank_aux");
      if (spans.length !== B || positives.length !== B) {
        throw new Error(
          `loss "blockrank_aux": ${B} items in attentionScores, ${spans.length} in ` +
            `documentSpans, ${positives.length} in positives`,
        );
      }
      const tokens = spans.map((s, b) => documentTokens(s, positives[b]!, T, b));
      const { loss, logits } = tidy(() => {
        const perItem: Tensor[] = [], logitRows: Tensor[] = [];
        for (let b = 0; b < B; b++) {
          const n = spans[b]!.length, idx = tokens[b]!;
          const rows = reshape(slice(S, 0, b, b + 1), [H * R, T]);
          const docAttention = softmax(
            indexSelect(rows, -1, Tensor.fromArray(idx, [idx.length], "i32")),
          );
          const assign = new Float64Array(idx.length * n);
          let at = 0;
          spans[b]!.forEach(([s, e], d) => {
            for (let t = s; t < e; t++) assign[(at++) * n + d] = 1;
          });
          const docScores = mean(matmul(docAttention, upload(assign, [idx.length, n])), 0, true);
          const logits = scale(docScores, 1 / options.temperature);
          const posMask = new Float64Array(n).fill(MASKED);
          for (const p of positives[b]!) posMask[p] = 0;
          perItem.push(sub(logSumExp(logits), logSumExp(add(logits, upload(posMask, [1, n])))));
          logitRows.push(logits);
        }
        return {
          loss: reshape(mean(concat(perItem, 0)), []),
          logits: logitRows,
        };
      });
      let correct = 0;
      for (let b = 0; b < B; b++) {
        const row = await logits[b]!.toArray();
        let best = 0;
        for (let d = 1; d < row.length; d++) if (row[d]! > row[best]!) best = d;
        if (positives[b]!.includes(best)) correct++;
        logits[b]!.dispose();
      }
      return { loss, metrics: { attention_accuracy: correct / B } };
    },
  };
}
