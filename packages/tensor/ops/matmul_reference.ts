/**
 * Float64 CPU reference of batched op(A)·op(B), the independent oracle of
 * the matmul tests and of the tuner's correctness check on small shapes.
 *
 * @module
 */

/** Shape and layout of a {@link refMatmul} problem. */
export interface RefMatmulDims {
  /** Batch entries. */
  batch: number;
  /** Output rows. */
  M: number;
  /** Output columns. */
  N: number;
  /** Reduction length. */
  K: number;
  /** A stored [K, M]. */
  tA: boolean;
  /** B stored [N, K]. */
  tB: boolean;
  /** A has a batch dimension (false: one 2-D A broadcast over the batch). */
  aB: boolean;
  /** B has a batch dimension. */
  bB: boolean;
}

/** float64 batched op(A)·op(B); `aB`/`bB` are 0 for a broadcast 2-D operand. */
export function refMatmul(
  a: Float64Array,
  b: Float64Array,
  d: RefMatmulDims,
): Float64Array {
  const c = new Float64Array(d.batch * d.M * d.N);
  for (let z = 0; z < d.batch; z++) {
    const ao = d.aB ? z * d.M * d.K : 0, bo = d.bB ? z * d.K * d.N : 0;
    for (let m = 0; m < d.M; m++) {
      for (let n = 0; n < d.N; n++) {
        let s = 0;
        for (let k = 0; k < d.K; k++) {
          const av = a[ao + (d.tA ? k * d.M + m : m * d.K + k)]!;
          const bv = b[bo + (d.tB ? n * d.K + k : k * d.N + n)]!;
          s += av * bv;
        }
        c[z * d.M * d.N + m * d.N + n] = s;
      }
    }
  }
  return c;
}
