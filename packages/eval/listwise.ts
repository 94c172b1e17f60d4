/**
 * RankLLM's reading of a listwise reranker's output (`[3] > [1] > [2]`),
 * as castorini/rank_llm's `receive_permutation` does it: every run of
 * digits is an identifier (1-based), repeats keep their first occurrence,
 * identifiers outside 1..n are dropped, and candidates the model left out
 * follow in their original order.
 *
 * @module
 */

/** The permutation (0-based candidate indices, best first) an output names. */
export function parsePermutation(output: string, candidates: number): number[] {
  const seen = new Set<number>();
  const order: number[] = [];
  for (const match of output.matchAll(/\d+/g)) {
    const index = Number(match[0]) - 1;
    if (index < 0 || index >= candidates || seen.has(index)) continue;
    seen.add(index);
    order.push(index);
  }
  for (let i = 0; i < candidates; i++) if (!seen.has(i)) order.push(i);
  return order;
}

/**
 * Scores for the candidates from a permutation so that sorting by score
 * reproduces it: the first gets n, the next n − 1, …, the last 1.
 */
export function permutationToScores(permutation: readonly number[]): number[] {
  const n = permutation.length;
  const scores = new Array<number>(n).fill(0);
  permutation.forEach((candidate, rank) => (scores[candidate] = n - rank));
  return scores;
}

/** {@link parsePermutation} then {@link permutationToScores}. */
export function listwiseOutputToScores(output: string, candidates: number): number[] {
  return permutationToScores(parsePermutation(output, candidates));
}
