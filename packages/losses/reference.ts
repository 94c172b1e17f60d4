/**
 * Float64 CPU references of every loss, written independently of the GPU
 * code (straight from the formulas / the cited PyTorch sources), for tests.
 *
 * @module
 */

/** log Σ exp over `xs` (−inf entries allowed). */
export function refLogSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(xs.reduce((s, v) => s + Math.exp(v - m), 0));
}

function normalizeRows(x: Float64Array, rows: number, d: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j]! ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j]! / n;
  }
  return out;
}

/** Dot-product (or cosine) scores `[Q, P]` of embeddings `[Q, d]`, `[P, d]`. */
export function refScores(
  q: Float64Array,
  p: Float64Array,
  d: number,
  normalize: boolean,
): Float64Array {
  const Q = q.length / d, P = p.length / d;
  const qq = normalize ? normalizeRows(q, Q, d) : q, pp = normalize ? normalizeRows(p, P, d) : p;
  const s = new Float64Array(Q * P);
  for (let i = 0; i < Q; i++) {
    for (let j = 0; j < P; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += qq[i * d + k]! * pp[j * d + k]!;
      s[i * P + j] = acc;
    }
  }
  return s;
}

/** InfoNCE on `[Q, Q·G]` scores (positives: labels > 0, else first of each group). */
export function refInfoNCE(
  scores: Float64Array,
  Q: number,
  temperature: number,
  inBatch: boolean,
  labels?: ArrayLike<number>,
): number {
  const W = scores.length / Q, G = W / Q;
  let total = 0;
  for (let q = 0; q < Q; q++) {
    const all: number[] = [], pos: number[] = [];
    for (let c = 0; c < W; c++) {
      const own = Math.floor(c / G) === q;
      if (!inBatch && !own) continue;
      const v = scores[q * W + c]! / temperature;
      all.push(v);
      const isPos = own && (labels ? labels[c]! > 0 : c % G === 0);
      if (isPos) pos.push(v);
    }
    total += refLogSumExp(all) - refLogSumExp(pos);
  }
  return total / Q;
}

function logSoftmaxMasked(x: number[], valid: boolean[]): number[] {
  const lse = refLogSumExp(x.filter((_, i) => valid[i]));
  return x.map((v, i) => (valid[i] ? v - lse : -Infinity));
}

/**
 * Trove KL: labels `[Q, K]` spread block-diagonally when scores are
 * `[Q, Q·K]`; batchmean of KL(softmax(labels) ‖ softmax(scores/τ)).
 */
export function refKL(
  scores: Float64Array,
  labels: ArrayLike<number>,
  Q: number,
  temperature: number,
  mask?: ArrayLike<number>,
): number {
  const W = scores.length / Q, K = labels.length / Q;
  let total = 0;
  for (let q = 0; q < Q; q++) {
    const t: number[] = [], s: number[] = [], valid: boolean[] = [];
    for (let c = 0; c < W; c++) {
      const block = W === K ? q : Math.floor(c / K);
      const k = W === K ? c : c % K;
      t.push(block === q ? labels[q * K + k]! : 0);
      s.push(scores[q * W + c]! / temperature);
      valid.push(mask ? mask[W === K ? q * K + c : c] === 1 : true);
    }
    const lt = logSoftmaxMasked(t, valid), ls = logSoftmaxMasked(s, valid);
    for (let c = 0; c < W; c++) {
      if (valid[c]) total += Math.exp(lt[c]!) * (lt[c]! - ls[c]!);
    }
  }
  return total / Q;
}

/** ListNet: mean over lists of −Σ softmax(t)·log softmax(s), padded excluded. */
export function refListNet(
  scores: Float64Array,
  labels: ArrayLike<number>,
  N: number,
  mask?: ArrayLike<number>,
): number {
  const L = scores.length / N;
  let total = 0;
  for (let n = 0; n < N; n++) {
    const idx = Array.from({ length: L }, (_, j) => n * L + j);
    const valid = idx.map((i) => !mask || mask[i] === 1);
    const lt = logSoftmaxMasked(idx.map((i) => labels[i]!), valid);
    const ls = logSoftmaxMasked(idx.map((i) => scores[i]!), valid);
    for (let j = 0; j < L; j++) if (valid[j]) total -= Math.exp(lt[j]!) * ls[j]!;
  }
  return total / N;
}

/** log(1 + e^x), stable. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** RankNet: mean over pairs t_i > t_j of w·softplus(−(s_i − s_j)); w = 1/(r_i+r_j) if weighted. */
export function refRankNet(
  scores: Float64Array,
  labels: ArrayLike<number>,
  N: number,
  weighted: boolean,
  mask?: ArrayLike<number>,
): number {
  const L = scores.length / N;
  let total = 0, pairs = 0;
  for (let n = 0; n < N; n++) {
    const ok = (i: number) => !mask || mask[n * L + i] === 1;
    // Rank = 1 + number of valid entries ahead (higher target, or equal and earlier).
    const rank = (i: number) => {
      let r = 1;
      for (let j = 0; j < L; j++) {
        if (!ok(j) || j === i) continue;
        const tj = labels[n * L + j]!, ti = labels[n * L + i]!;
        if (tj > ti || (tj === ti && j < i)) r++;
      }
      return r;
    };
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        if (!ok(i) || !ok(j) || !(labels[n * L + i]! > labels[n * L + j]!)) continue;
        const w = weighted ? 1 / (rank(i) + rank(j)) : 1;
        total += w * softplus(-(scores[n * L + i]! - scores[n * L + j]!));
        pairs++;
      }
    }
  }
  return pairs === 0 ? 0 : total / pairs;
}

/**
 * allRank `lambdaLoss(..., weighing_scheme="ndcgLoss2_scheme")` written in its
 * matrix form over predicted-rank positions (stable sort for ties).
 */
export function refLambdaLoss(
  scores: Float64Array,
  labels: ArrayLike<number>,
  N: number,
  options: { sigma?: number; k?: number; eps?: number; reduction?: "sum" | "mean" },
  mask?: ArrayLike<number>,
): number {
  const L = scores.length / N, sigma = options.sigma ?? 1, eps = options.eps ?? 1e-10;
  const k = options.k ?? L;
  let total = 0, count = 0;
  for (let n = 0; n < N; n++) {
    const pred = Array.from(
      { length: L },
      (_, i) => (!mask || mask[n * L + i] === 1) ? scores[n * L + i]! : -Infinity,
    );
    const truth = Array.from(
      { length: L },
      (_, i) => (!mask || mask[n * L + i] === 1) ? labels[n * L + i]! : -Infinity,
    );
    const order = Array.from({ length: L }, (_, i) => i).sort((a, b) => {
      if (pred[a] === pred[b]) return a - b;
      return pred[b]! > pred[a]! ? 1 : -1;
    });
    const predSorted = order.map((i) => pred[i]!);
    const trueByPred = order.map((i) => truth[i]!);
    const trueSorted = [...truth].sort((a, b) => (a === b ? 0 : b > a ? 1 : -1));
    const D = Array.from({ length: L }, (_, p) => Math.log2(2 + p)); // D[p] = log2(1 + (p+1))
    let maxDCG = 0;
    for (let p = 0; p < Math.min(k, L); p++) {
      maxDCG += (2 ** Math.max(trueSorted[p]!, 0) - 1) / D[p]!;
    }
    maxDCG = Math.max(maxDCG, eps);
    const G = trueByPred.map((t) => (2 ** Math.max(t, 0) - 1) / maxDCG);
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const diff = trueByPred[i]! - trueByPred[j]!;
        if (!Number.isFinite(diff) || !(diff > 0) || i >= k || j >= k) continue;
        const delta = Math.abs(i - j);
        const deltaWeight = delta === 0 ? 0 : Math.abs(1 / D[delta - 1]! - 1 / D[delta]!);
        const w = deltaWeight * Math.abs(G[i]! - G[j]!);
        const sd = Math.min(Math.max(predSorted[i]! - predSorted[j]!, -1e8), 1e8);
        const p = Math.max(1 / (1 + Math.exp(-sigma * sd)), eps);
        const weighted = Math.max(p ** w, eps);
        total += Math.log2(weighted);
        count++;
      }
    }
  }
  return options.reduction === "mean" ? -total / count : -total;
}

/** Mean token cross-entropy of `[N, V]` logits, targets −100 ignored (0 when none count). */
export function refCrossEntropy(
  logits: Float64Array,
  targets: ArrayLike<number>,
  V: number,
): number {
  let total = 0, count = 0;
  for (let n = 0; n < targets.length; n++) {
    const t = targets[n]!;
    if (t === -100) continue;
    const row = Array.from(logits.subarray(n * V, n * V + V));
    total += refLogSumExp(row) - row[t]!;
    count++;
  }
  return count === 0 ? 0 : total / count;
}

/** BlockRank auxiliary loss and top-1 accuracy on `[B, H, R, T]` scores. */
export function refBlockRankAux(
  S: Float64Array,
  shape: [number, number, number, number],
  spans: ReadonlyArray<ReadonlyArray<readonly [number, number]>>,
  positives: ReadonlyArray<ReadonlyArray<number>>,
  temperature: number,
): { loss: number; accuracy: number } {
  const [B, H, R, T] = shape;
  let total = 0, correct = 0;
  for (let b = 0; b < B; b++) {
    const docs = spans[b]!;
    const score = new Array<number>(docs.length).fill(0);
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < R; r++) {
        const base = ((b * H + h) * R + r) * T;
        const cols: number[] = [];
        for (const [s, e] of docs) for (let t = s; t < e; t++) cols.push(S[base + t]!);
        const lse = refLogSumExp(cols);
        docs.forEach(([s, e], d) => {
          for (let t = s; t < e; t++) score[d]! += Math.exp(S[base + t]! - lse) / (H * R);
        });
      }
    }
    const logits = score.map((v) => v / temperature);
    total += refLogSumExp(logits) - refLogSumExp(positives[b]!.map((p) => logits[p]!));
    const best = logits.indexOf(Math.max(...logits));
    if (positives[b]!.includes(best)) correct++;
  }
  return { loss: total / B, accuracy: correct / B };
}

/** Mean squared error. */
export function refMSE(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

/** Mean over rows of 1 − cos (norms clamped at 1e-8). */
export function refCosine(a: ArrayLike<number>, b: ArrayLike<number>, d: number): number {
  const rows = a.length / d;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < d; j++) {
      const x = a[r * d + j]!, y = b[r * d + j]!;
      ab += x * y, aa += x * x, bb += y * y;
    }
    total += 1 - ab / (Math.max(Math.sqrt(aa), 1e-8) * Math.max(Math.sqrt(bb), 1e-8));
  }
  return total / rows;
}

/** The first `dim` columns of row-major `[rows, width]` values. */
export function refPrefix(x: ArrayLike<number>, width: number, dim: number): Float64Array {
  const rows = x.length / width, out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) out[r * dim + j] = x[r * width + j]!;
  return out;
}

/** Margin-MSE: mean over lists and negatives of ((s0 − sj) − (t0 − tj))². */
export function refMarginMSE(s: ArrayLike<number>, t: ArrayLike<number>, N: number): number {
  const L = s.length / N;
  let total = 0;
  for (let n = 0; n < N; n++) {
    for (let j = 1; j < L; j++) {
      total += ((s[n * L]! - s[n * L + j]!) - (t[n * L]! - t[n * L + j]!)) ** 2;
    }
  }
  return total / (N * (L - 1));
}

/** Mean BCE with logits over unpadded entries. */
export function refBCE(
  s: ArrayLike<number>,
  y: ArrayLike<number>,
  mask?: ArrayLike<number>,
): number {
  let total = 0, count = 0;
  for (let i = 0; i < s.length; i++) {
    if (mask && mask[i] !== 1) continue;
    total += y[i]! * softplus(-s[i]!) + (1 - y[i]!) * softplus(s[i]!);
    count++;
  }
  return total / count;
}

/**
 * RankLLM's `compute_ranking_loss` (castorini/rank_llm
 * `training/utils/train_utils.py`) transliterated per list: targets
 * `sort(s, desc)[rank(i)]` (rank by label descending, from `targetScores`,
 * default the scores themselves: pass fixed ones to detach the targets),
 * then upstream's `listNet`, `rank_net` or `lambdarank` (`loss.py`) on the
 * list, then the mean over lists.
 */
export function refRankLlmRanking(
  scores: Float64Array,
  labels: ArrayLike<number>,
  N: number,
  loss: "lambdarank" | "listnet" | "ranknet",
  options: { weighted?: boolean; reduction?: "sum" | "mean"; sigma?: number; k?: number },
  mask?: ArrayLike<number>,
  targetScores: ArrayLike<number> = scores,
): number {
  const L = scores.length / N;
  const desc = (v: ArrayLike<number>, ids: number[]) =>
    [...ids].sort((a, b) => (v[a] === v[b] ? a - b : v[b]! > v[a]! ? 1 : -1));
  let total = 0;
  for (let n = 0; n < N; n++) {
    const ids = Array.from({ length: L }, (_, i) => n * L + i).filter((i) => !mask || mask[i]);
    const s = ids.map((i) => scores[i]!);
    // true_scores = gather(scores.sort(desc), true_rank)
    const sorted = desc(targetScores, ids).map((i) => targetScores[i]!);
    const byLabel = desc(labels, ids);
    const t = ids.map((i) => sorted[byLabel.indexOf(i)]!);
    if (loss === "listnet") {
      const softmaxOf = (x: number[]) => {
        const m = Math.max(...x), e = x.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b);
        return e.map((v) => v / z);
      };
      const p = softmaxOf(t), q = softmaxOf(s);
      total += -p.reduce((acc, pj, j) => acc + pj * Math.log(q[j]! + 1e-10), 0);
    } else if (loss === "ranknet") {
      // rank_net: pairs of product(range(n), repeat=2) with t_i − t_j > 0; BCEWithLogits(weight).
      const ranks = new Map(desc(t, t.map((_, i) => i)).map((i, r) => [i, r + 1]));
      let sumLoss = 0, count = 0;
      for (let i = 0; i < t.length; i++) {
        for (let j = 0; j < t.length; j++) {
          if (!(t[i]! - t[j]! > 0)) continue;
          const w = options.weighted ? 1 / (ranks.get(i)! + ranks.get(j)!) : 1;
          sumLoss += w * softplus(-(s[i]! - s[j]!));
          count++;
        }
      }
      total += sumLoss / count;
    } else {
      total += refLambdaLoss(Float64Array.from(s), t, 1, {
        reduction: options.reduction ?? "mean",
        sigma: options.sigma,
        k: options.k,
      });
    }
  }
  return total / N;
}
