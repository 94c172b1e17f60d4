/**
 * WGSL of selected-row scores: S[b, h, r, j] = scale·q[b, h, rows[b, r]]·k[b, kvh, j]
 * with masked entries −∞, and its backward (dQ of the selected rows, dK summed
 * over each kv group). One thread per output element, no atomics: each dQ/dK
 * element has exactly one writer, which adds its sum into the buffer.
 *
 * @module
 */

import { MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";

const FLAT_INDEX_WGSL = /* wgsl */ `
fn flatIndex(wid: vec3<u32>, groups: vec3<u32>, li: u32) -> u32 {
  return (wid.y * groups.x + wid.x) * 64u + li;
}
`;

/** Row-scores forward. Bindings: 0 params, 1 q, 2 k, 3 mask, 4 rows (i32 `[B, R]`), 5 scores. */
export function rowScoresKernelSource(headDim: number): string {
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
  if (n >= P.batch * P.heads * rowCount * seqLen) { return; }
  let j = n % seqLen;
  let r = (n / seqLen) % rowCount;
  let h = (n / (seqLen * rowCount)) % P.heads;
  let b = n / (seqLen * rowCount * P.heads);
  let row = rows[b * rowCount + r];
  var s = bitcast<f32>(P.negInfBits);
  if (row >= 0 && visible(tokenMeta(b, u32(row)), u32(row), tokenMeta(b, j), j)) {
    let kvh = h / (P.heads / P.kvHeads);
    let qBase = ((b * P.heads + h) * seqLen + u32(row)) * D;
    let kBase = ((b * P.kvHeads + kvh) * seqLen + j) * D;
    var dot = 0.0;
    for (var d = 0u; d < D; d++) { dot += q[qBase + d] * k[kBase + d]; }
    s = dot * P.scale;
  }
  scores[n] = s;
}
`;
}

/**
 * Row-scores dQ: thread per (b, h, r, d) adds scale·Σⱼ dS·k into dQ[b, h, rows[r], d].
 * Bindings: 0 params, 1 dScores, 2 k, 3 mask, 4 rows, 5 dQ (read-write, accumulated).
 */
export function rowScoresQueryGradKernelSource(headDim: number): string {
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
  if (n >= P.batch * P.heads * rowCount * D) { return; }
  let d = n % D;
  let r = (n / D) % rowCount;
  let h = (n / (D * rowCount)) % P.heads;
  let b = n / (D * rowCount * P.heads);
  let row = rows[b * rowCount + r];
  if (row < 0) { return; }
  let i = u32(row);
  let queryMeta = tokenMeta(b, i);
  let kvh = h / (P.heads / P.kvHeads);
  let kBase = (b * P.kvHeads + kvh) * seqLen * D;
  let sBase = ((b * P.heads + h) * rowCount + r) * seqLen;
  var sum = 0.0;
  for (var j = 0u; j <= i; j++) {
    if (visible(queryMeta, i, tokenMeta(b, j), j)) { sum += dScores[sBase + j] * k[kBase + j * D + d]; }
  }
  let index = ((b * P.heads + h) * seqLen + i) * D + d;
  dQ[index] = dQ[index] + sum * P.scale;
}
`;
}

/**
 * Row-scores dK: thread per (b, kvh, j, d) adds scale·Σ_{h in group, r} dS·q[rows[r]]
 * into dK[b, kvh, j, d]. Bindings: 0 params, 1 dScores, 2 q, 3 mask, 4 rows, 5 dK.
 */
export function rowScoresKeyGradKernelSource(headDim: number): string {
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
      sum += dScore * q[((b * P.heads + h) * seqLen + u32(row)) * D + d];
    }
  }
  dK[n] = dK[n] + sum * P.scale;
}
`;
}
