/**
 * RankLLM's ranking loss (castorini/rank_llm `training/utils/train_utils.py`
 * `compute_ranking_loss`, losses from `training/utils/loss.py`), for the
 * listwise recipe on RankLLM's own conversations file. Per list, upstream
 * targets the model's own scores reassigned by the permutation:
 *
 *   t_i = sort(s, descending)[rank(i)],
 *
 * identifier i (rank 0 = first) gets the rank(i)-th largest current score.
 * The targets are not detached: t is a differentiable gather of s (the
 * gather indices come from the current values, read back to the host, n
 * numbers per list), so the gradient flows through both arguments. Then,
 * per list, as upstream's functions (batch of one) compute them:
 *
 * - `listnet`: −Σ_j softmax(t)_j · log(softmax(s)_j + 1e-10);
 * - `ranknet`: mean over pairs t_i > t_j of w_ij · −log σ(s_i − s_j)
 *   (`BCEWithLogitsLoss(weight)`); `weighted`: w_ij = 1/(r_i + r_j), r the
 *   1-based rank by t, else 1. t enters through the pair choice and the
 *   ranks only, so no gradient flows through it;
 * - `lambdarank`: allRank's NDCGLoss2 (`lambdarank.ts` gives the formula)
 *   with t as labels, upstream's default `reduction: "mean"` over the
 *   list's pairs (the loss option decides; the rankllm dialect sets mean);
 *   the gains G and maxDCG are functions of t, so the gradient flows through
 *   the pair weights w_ij = δ_ij·|G_i − G_j| too;
 *
 * and the mean over lists (`rank_losses.mean()`). Lists may differ in
 * length (`mask`). `labels` give the permutation: rank by label, descending
 * (grades `n − rank` as `rankllm_conversations.ts` builds them); ties in
 * labels or scores keep list order (PyTorch's sort order for ties is
 * unspecified). Two deliberate differences: a list without any pair (all
 * scores tied) contributes 0 where upstream's mean over no pairs is NaN, and
 * listNet's padding sentinel (a target equal to exactly −1 is dropped) is
 * not copied: padding here is the `mask`.
 *
 * @example
 * ```ts
 * import { getDevice, tensor } from "@irforge/tensor";
 * import { rankLlmRankingLoss } from "@irforge/losses";
 *
 * await getDevice();
 * const loss = rankLlmRankingLoss("ranknet", { weighted: true });
 * // One list of three identifiers; the permutation is [B] > [A] > [C].
 * const scores = tensor([0.5, 2, -1], [1, 3]);
 * const { loss: value } = await loss.compute({ scores, labels: [2, 3, 1] });
 * console.log(await value.item());
 * ```
 *
 * @module
 */

import {
  addScalar,
  div,
  exp,
  log,
  mul,
  relu,
  reshape,
  scale,
  softmax,
  sub,
  sum,
  type Tensor,
  tidy,
} from "@irforge/tensor";
import {
  checkRank,
  clampMin,
  gatherFlat,
  hostArray,
  hostMask,
  maskLogits,
  need,
  upload,
  zeroFrom,
} from "./compose.ts";
import { lambdarankOptions } from "./lambdarank.ts";
import { listnetOptions } from "./listnet.ts";
import { ranknetOptions } from "./ranknet.ts";
import { type ResolvedOptions, validateOptions } from "./options.ts";
import { pairLogSigmoid } from "./pairs.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** The ranking losses of upstream's `--ranking_loss` (lambda, listnet, ranknet), irforge's names. */
export const RANKLLM_RANKING_LOSSES: readonly string[] = ["lambdarank", "listnet", "ranknet"];

/** listNet's eps inside the log (upstream's default). */
const LISTNET_EPS = 1e-10;

/** Entries of `list` in descending order of `values` (ties: list order). */
function descending(values: ArrayLike<number>, list: readonly number[]): number[] {
  return [...list].sort((a, b) => values[b]! - values[a]! || a - b);
}

/** Upstream's targets of one batch, from the current scores (host). */
export interface PermutedTargets {
  /** Flat index into `scores` of each entry's target (−1: padding). */
  index: Int32Array;
  /** The target values (0 at padding). */
  values: Float64Array;
  /** Per list, its valid entries in predicted order (scores descending). */
  predicted: number[][];
}

/**
 * The targets `t_i = sort(s, desc)[rank(i)]` of `[N, L]` scores, rank by
 * label descending: which score each entry gets, from the current values.
 */
export function permutedTargets(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  valid: ArrayLike<number>,
  N: number,
  L: number,
): PermutedTargets {
  const index = new Int32Array(N * L).fill(-1);
  const values = new Float64Array(N * L);
  const predicted: number[][] = [];
  for (let n = 0; n < N; n++) {
    const entries = Array.from({ length: L }, (_, i) => n * L + i).filter((i) => valid[i]);
    const byScore = descending(scores, entries);
    descending(labels, entries).forEach((entry, rank) => {
      index[entry] = byScore[rank]!;
      values[entry] = scores[byScore[rank]!]!;
    });
    predicted.push(byScore);
  }
  return { index, values, predicted };
}

/** Options of each RankLLM ranking loss (those of the irforge loss of the same name). */
const SCHEMAS = {
  lambdarank: lambdarankOptions,
  listnet: listnetOptions,
  ranknet: ranknetOptions,
} as const;

/**
 * RankLLM's `compute_ranking_loss` with `name` (`lambdarank`, `listnet` or
 * `ranknet`) and the options of irforge's loss of that name. Inputs:
 * `scores` `[N, L]`, `labels` `[N·L]` (higher = better; they give the
 * permutation), optional `mask`.
 */
export function rankLlmRankingLoss(
  name: string,
  options: Readonly<Record<string, unknown>> = {},
): Loss {
  if (!RANKLLM_RANKING_LOSSES.includes(name)) {
    throw new Error(
      `RankLLM's ranking objective trains ${RANKLLM_RANKING_LOSSES.join(", ")} ` +
        `(upstream's --ranking_loss lambda, listnet, ranknet), not "${name}"`,
    );
  }
  const key = name as keyof typeof SCHEMAS;
  const resolved = validateOptions(name, SCHEMAS[key], options);
  return {
    name,
    options: resolved,
    async compute(inputs: LossInputs): Promise<LossOutput> {
      const scores = need(inputs, "scores", name);
      checkRank(scores, 2, "scores", name);
      const [N, L] = scores.shape as [number, number];
      const labels = hostArray(need(inputs, "labels", name), N * L, "labels", name);
      const valid = hostMask(inputs.mask, N * L, name);
      const current = await scores.toArray();
      const targets = permutedTargets(current, labels, valid, N, L);
      const loss = tidy(() => {
        if (key === "listnet") return listNetLoss(scores, targets, valid, N, L);
        if (key === "ranknet") {
          const weighted = (resolved as ResolvedOptions<typeof ranknetOptions>).weighted;
          return rankNetLoss(scores, targets, N, weighted);
        }
        const o = resolved as ResolvedOptions<typeof lambdarankOptions>;
        return lambdaLoss(scores, targets, N, L, o);
      });
      return { loss };
    },
  };
}

/** mean over lists of −Σ softmax(t)·log(softmax(s) + eps). */
function listNetLoss(
  scores: Tensor,
  targets: PermutedTargets,
  valid: Uint8Array,
  N: number,
  L: number,
): Tensor {
  const t = gatherFlat(scores, targets.index, [N, L]);
  const p = softmax(maskLogits(t, valid));
  const logQ = log(addScalar(softmax(maskLogits(scores, valid)), LISTNET_EPS));
  return reshape(scale(sum(mul(p, logQ)), -1 / N), []);
}

/** Pairs `[i0, j0, …]` (flat) and each pair's factor in the mean over lists. */
interface WeightedPairs {
  indices: number[];
  factors: number[];
}

/** mean over lists of the mean over pairs t_i > t_j of w_ij·−log σ(s_i − s_j). */
function rankNetLoss(
  scores: Tensor,
  targets: PermutedTargets,
  N: number,
  weighted: boolean,
): Tensor {
  const pairs: WeightedPairs = { indices: [], factors: [] };
  const t = targets.values;
  for (let n = 0; n < N; n++) {
    const entries = targets.predicted[n]!;
    // torch.sort(y_true, descending) ranks, 1-based.
    const rank = new Map(descending(t, entries).map((e, r) => [e, r + 1]));
    const start = pairs.factors.length;
    for (const i of entries) {
      for (const j of entries) {
        if (!(t[i]! > t[j]!)) continue;
        pairs.indices.push(i, j);
        pairs.factors.push(weighted ? 1 / (rank.get(i)! + rank.get(j)!) : 1);
      }
    }
    const P = pairs.factors.length - start;
    for (let p = start; p < start + P; p++) pairs.factors[p]! /= P * N;
  }
  if (pairs.factors.length === 0) return zeroFrom(scores);
  const logSig = pairLogSigmoid(scores, Int32Array.from(pairs.indices));
  return reshape(scale(sum(mul(logSig, upload(pairs.factors, [pairs.factors.length]))), -1), []);
}

/** 2^max(x, 0) − 1, elementwise. */
function gain(x: Tensor): Tensor {
  return addScalar(exp(scale(relu(x), Math.LN2)), -1);
}

/** allRank's NDCGLoss2 per list with differentiable targets, then the mean over lists. */
function lambdaLoss(
  scores: Tensor,
  targets: PermutedTargets,
  N: number,
  L: number,
  o: ResolvedOptions<typeof lambdarankOptions>,
): Tensor {
  const t = targets.values;
  const D = (n: number) => Math.log2(1 + n);
  const byPredIndex = new Int32Array(N * L).fill(-1), idealIndex = new Int32Array(N * L).fill(-1);
  const discount = new Float64Array(N * L);
  const scorePairs: number[] = [], gPairsA: number[] = [], gPairsB: number[] = [];
  const deltaSign: number[] = [], factors: number[] = [];
  for (let n = 0; n < N; n++) {
    const byPred = targets.predicted[n]!;
    const ideal = descending(t, byPred);
    const m = Math.min(o.k ?? byPred.length, byPred.length);
    byPred.forEach((e, a) => (byPredIndex[n * L + a] = e));
    ideal.forEach((e, p) => {
      idealIndex[n * L + p] = e;
      if (p < m) discount[n * L + p] = 1 / D(p + 1);
    });
    const start = factors.length;
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        const ta = t[byPred[a]!]!, tb = t[byPred[b]!]!;
        if (!(ta > tb)) continue;
        const delta = Math.abs(a - b);
        scorePairs.push(byPred[a]!, byPred[b]!);
        gPairsA.push(n * L + a);
        gPairsB.push(n * L + b);
        // |G_a − G_b| as sign·(G_a − G_b): ta > tb, so G_a > G_b unless both gains are 0
        // (where abs's gradient, like torch's, is 0).
        const sign = Math.max(ta, 0) > Math.max(tb, 0) ? 1 : 0;
        deltaSign.push(Math.abs(1 / D(delta) - 1 / D(delta + 1)) * sign);
        factors.push(1);
      }
    }
    const P = factors.length - start;
    const divisor = (o.reduction === "mean" ? P : 1) * N;
    for (let p = start; p < start + P; p++) factors[p]! /= divisor;
  }
  const P = factors.length;
  if (P === 0) return zeroFrom(scores);
  const floor = Math.log2(o.eps);
  const targetTensor = gatherFlat(scores, targets.index, [N, L]);
  const trueByPred = gatherFlat(targetTensor, byPredIndex, [N, L]);
  const trueSorted = gatherFlat(targetTensor, idealIndex, [N, L]);
  const maxDCG = clampMin(sum(mul(gain(trueSorted), upload(discount, [N, L])), -1, true), o.eps);
  const G = div(gain(trueByPred), maxDCG);
  const weights = mul(
    sub(gatherFlat(G, gPairsA, [P]), gatherFlat(G, gPairsB, [P])),
    upload(deltaSign, [P]),
  );
  // log2 clamp(clamp(σ, eps)^w, eps) = clamp(w·log2 clamp(σ, eps), log2 eps).
  const log2p = clampMin(
    scale(pairLogSigmoid(scores, Int32Array.from(scorePairs), o.sigma), Math.LOG2E),
    floor,
  );
  const terms = clampMin(mul(log2p, weights), floor);
  return reshape(scale(sum(mul(terms, upload(factors, [P]))), -1), []);
}
