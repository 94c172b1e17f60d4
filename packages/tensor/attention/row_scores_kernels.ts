/**
 * WGSL of selected-row scores: S[b, h, r, j] = scale·q[b, h, rows[b, r]]·k[b, kvh, j]
 * with masked entries −∞, and its backward (dQ of the selected rows, dK summed
 * over each kv group). One thread per output element, no atomics: each dQ/dK
 * element has exactly one writer, which adds its sum into the buffer.
 *
 * q, k and the gradients dQ, dK may be stored as f16 (`operand`); products and
 * sums are f32, scores f32. With subgroups the forward gives each score
 * `lanes` invocations that split the head dimension, and dQ gives each
 * element `lanes` invocations that split the keys; their partial sums meet in
 * a subgroup butterfly (see `subgroups.ts`). dK sums over only R·(heads per
 * kv head) terms per element and stays one invocation per element.
 *
 * @module
 */

import { butterfly, invocationArgs, invocationIndex } from "./subgroups.ts";
import type { AttentionElement } from "./wgsl_blocks.ts";
import { MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";

const widen = (operand: AttentionElement, x: string) => operand === "f32" ? x : `f32(${x})`;
const narrow = (operand: AttentionElement, x: string) => operand === "f32" ? x : `${operand}(${x})`;

const FLAT_INDEX_WGSL = /* wgsl */ `
fn flatIndex(wid: vec3<u32>, groups: vec3<u32>, li: u32) -> u32 {
  return (wid.y * groups.x + wid.x) * 64u + li;
}
`;

/**
 * Row-scores forward. Bindings: 0 params, 1 q, 2 k (stored as `operand`),
 * 3 mask, 4 rows (i32 `[B, R]`), 5 scores. `lanes` invocations per score
 * (1 without subgroups).
 */
export function rowScoresKernelSource(
  headDim: number,
  operand: AttentionElement = "f32",
  lanes = 1,
): string {
  const subgroups = lanes > 1;
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${FLAT_INDEX_WGSL}
const D: u32 = ${headDim}u;
const LANES: u32 = ${lanes}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  ${invocationArgs(subgroups)},
) {
  ${invocationIndex(subgroups)}
  let slot = flatIndex(wid, groups, li);
  let n = slot / LANES;
  let lane = slot % LANES;
  let seqLen = P.seqLen;
  let rowCount = P.rowsPerBatch;
  let inRange = n < P.batch * P.heads * rowCount * seqLen;
  let j = n % seqLen;
  let r = (n / seqLen) % rowCount;
  let h = (n / (seqLen * rowCount)) % P.heads;
  let b = min(n / (seqLen * rowCount * P.heads), P.batch - 1u);
  let row = rows[b * rowCount + r];
  let seen = inRange && row >= 0 && visible(tokenMeta(b, u32(row)), u32(row), tokenMeta(b, j), j);
  let kvh = h / (P.heads / P.kvHeads);
  let qBase = ((b * P.heads + h) * seqLen + u32(max(row, 0))) * D;
  let kBase = ((b * P.kvHeads + kvh) * seqLen + j) * D;
  var dot = 0.0;
  // A fixed trip count keeps the subgroup exchange below in uniform control flow.
  for (var d0 = 0u; d0 < D; d0 += LANES) {
    let d = d0 + lane;
    if (seen && d < D) { dot += ${widen(operand, "q[qBase + d]")} * ${
    widen(operand, "k[kBase + d]")
  }; }
  }
  ${butterfly("sum", "dot", lanes)}
  if (inRange && lane == 0u) { scores[n] = select(bitcast<f32>(P.negInfBits), dot * P.scale, seen); }
}
`;
}

/**
 * Row-scores dQ: each (b, h, r, d) adds scale·Σⱼ dS·k into dQ[b, h, rows[r], d].
 * With `lanes` > 1 (subgroups) the sum over keys j is split across `lanes`
 * invocations (j ≡ lane mod lanes) whose partial sums meet in a butterfly;
 * with 1 one invocation walks every key. Bindings: 0 params, 1 dScores, 2 k,
 * 3 mask, 4 rows, 5 dQ (read-write, accumulated).
 */
export function rowScoresQueryGradKernelSource(
  headDim: number,
  operand: AttentionElement = "f32",
  lanes = 1,
): string {
  const subgroups = lanes > 1;
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${FLAT_INDEX_WGSL}
const D: u32 = ${headDim}u;
const LANES: u32 = ${lanes}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  ${invocationArgs(subgroups)},
) {
  ${invocationIndex(subgroups)}
  let slot = flatIndex(wid, groups, li);
  let n = slot / LANES;
  let lane = slot % LANES;
  let seqLen = P.seqLen;
  let rowCount = P.rowsPerBatch;
  let inRange = n < P.batch * P.heads * rowCount * D;
  let d = n % D;
  let r = (n / D) % rowCount;
  let h = (n / (D * rowCount)) % P.heads;
  let b = min(n / (D * rowCount * P.heads), P.batch - 1u);
  let row = rows[b * rowCount + r];
  let live = inRange && row >= 0;
  let i = u32(max(row, 0));
  let queryMeta = tokenMeta(b, i);
  let kvh = h / (P.heads / P.kvHeads);
  let kBase = (b * P.kvHeads + kvh) * seqLen * D;
  let sBase = ((b * P.heads + h) * rowCount + r) * seqLen;
  var sum = 0.0;
  // No early return and, with lanes, a trip count every lane shares: the
  // exchange below runs in uniform control flow.
  for (var j0 = 0u; j0 < ${subgroups ? "seqLen" : "i + 1u"}; j0 += LANES) {
    let j = j0 + lane;
    if (live && j <= i && visible(queryMeta, i, tokenMeta(b, j), j)) {
      sum += dScores[sBase + j] * ${widen(operand, "k[kBase + j * D + d]")};
    }
  }
  ${butterfly("sum", "sum", lanes)}
  if (live && lane == 0u) {
    let index = ((b * P.heads + h) * seqLen + i) * D + d;
    dQ[index] = ${narrow(operand, `${widen(operand, "dQ[index]")} + sum * P.scale`)};
  }
}
`;
}

/**
 * Row-scores dK: thread per (b, kvh, j, d) adds scale·Σ_{h in group, r} dS·q[rows[r]]
 * into dK[b, kvh, j, d]. Bindings: 0 params, 1 dScores, 2 q, 3 mask, 4 rows, 5 dK.
 */
export function rowScoresKeyGradKernelSource(
  headDim: number,
  operand: AttentionElement = "f32",
): string {
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${FLAT_INDEX_WGSL}
const D: u32 = ${headDim}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let n = flatIndex(wid, groups, li);
  let seqLen = P.seqLen;
  let rowCount = P.rowsPerBatch;
  if (n >= P.batch * P.kvHeads * seqLen * D) { return; }
  let d = n % D;
  let j = (n / D) % seqLen;
  let kvh = (n / (D * seqLen)) % P.kvHeads;
  let b = n / (D * seqLen * P.kvHeads);
  let group = P.heads / P.kvHeads;
  let keyMeta = tokenMeta(b, j);
  var sum = 0.0;
  for (var r = 0u; r < rowCount; r++) {
    let row = rows[b * rowCount + r];
    if (row < 0 || !visible(tokenMeta(b, u32(row)), u32(row), keyMeta, j)) { continue; }
    for (var g = 0u; g < group; g++) {
      let h = kvh * group + g;
      let dScore = dScores[((b * P.heads + h) * rowCount + r) * seqLen + j];
      sum += dScore * ${widen(operand, "q[((b * P.heads + h) * seqLen + u32(row)) * D + d]")};
    }
  }
  dK[n] = ${narrow(operand, `${widen(operand, "dK[n]")} + sum * P.scale`)};
}
`;
}
