/**
 * WGSL of the fused attention forward: one workgroup per (query tile, query
 * head, batch row) walks the active key tiles of its query tile, staging K and
 * then V in workgroup memory, with an online softmax (running max and sum)
 * so the T×T score matrix never exists.
 *
 * @module
 */

import type { AttentionTiling } from "./tiling.ts";
import { MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";

/**
 * Forward kernel source. Bindings: 0 params, 1 q, 2 k, 3 v, 4 mask, 5 out, 6 lse.
 * Threads: `queryTile × threadsPerRow`; thread (r, p) owns query row r, scores
 * of keys p, p+P, … and output columns p, p+P, … of that row.
 */
export function forwardKernelSource(headDim: number, tiling: AttentionTiling): string {
  const { queryTile: br, keyTile: bc, threadsPerRow: tpr } = tiling;
  const columnsPerThread = Math.ceil(headDim / tpr);
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
const BR: u32 = ${br}u;
const BC: u32 = ${bc}u;
const TPR: u32 = ${tpr}u;
const D: u32 = ${headDim}u;
const COLS: u32 = ${columnsPerThread}u;
const THREADS: u32 = ${br * tpr}u;

var<workgroup> queryTile: array<f32, ${br * headDim}>;
var<workgroup> kvTile: array<f32, ${bc * headDim}>;
var<workgroup> scoreTile: array<f32, ${br * bc}>;
var<workgroup> keyMeta: array<vec4<i32>, ${bc}>;
var<workgroup> listBounds: vec2<u32>;

@compute @workgroup_size(${br * tpr})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let qt = wid.x;
  let h = wid.y;
  let b = wid.z;
  let seqLen = P.seqLen;
  let kvh = h / (P.heads / P.kvHeads);
  let r = li / TPR;
  let p = li % TPR;
  let i = qt * BR + r;
  let q0 = qt * BR;
  let rowsHere = min(BR, seqLen - q0);
  let qBase = ((b * P.heads + h) * seqLen + q0) * D;
  for (var x = li; x < BR * D; x += THREADS) {
    if (x < rowsHere * D) { queryTile[x] = q[qBase + x]; } else { queryTile[x] = 0.0; }
  }
  let queryMeta = tokenMeta(b, i);
  let kvBase = (b * P.kvHeads + kvh) * seqLen * D;
  if (li == 0u) {
    let list = P.forwardTable + b * P.numQueryTiles + qt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);

  var runningMax = MASKED;
  var runningSum = 0.0;
  var acc: array<f32, ${columnsPerThread}>;
  for (var e = bounds.x; e < bounds.y; e++) {
    let entry = u32(mask[e]);
    let k0 = (entry & ~FULL_TILE_BIT) * BC;
    let full = (entry & FULL_TILE_BIT) != 0u;
    let keysHere = min(BC, seqLen - k0);
    workgroupBarrier(); // previous tile's V is no longer read
    for (var x = li; x < BC * D; x += THREADS) {
      if (x < keysHere * D) { kvTile[x] = k[kvBase + k0 * D + x]; } else { kvTile[x] = 0.0; }
    }
    for (var x = li; x < BC; x += THREADS) { keyMeta[x] = tokenMeta(b, k0 + x); }
    workgroupBarrier();
    // Scores of this thread's keys; a fully visible tile skips the mask test.
    for (var jj = p; jj < BC; jj += TPR) {
      var s = MASKED;
      if (full || visible(queryMeta, i, keyMeta[jj], k0 + jj)) {
        var dot = 0.0;
        for (var d = 0u; d < D; d++) { dot += queryTile[r * D + d] * kvTile[jj * D + d]; }
        s = dot * P.scale;
      }
      scoreTile[r * BC + jj] = s;
    }
    workgroupBarrier(); // K is no longer read: stage V in its place
    for (var x = li; x < BC * D; x += THREADS) {
      if (x < keysHere * D) { kvTile[x] = v[kvBase + k0 * D + x]; } else { kvTile[x] = 0.0; }
    }
    workgroupBarrier();
    // Online softmax: rescale what was accumulated to the new running max.
    var tileMax = MASKED;
    for (var jj = 0u; jj < BC; jj++) { tileMax = max(tileMax, scoreTile[r * BC + jj]); }
    let newMax = max(runningMax, tileMax);
    let rescale = exp(runningMax - newMax);
    runningSum *= rescale;
    for (var c = 0u; c < COLS; c++) { acc[c] *= rescale; }
    for (var jj = 0u; jj < BC; jj++) {
      let s = scoreTile[r * BC + jj];
      if (s > MASKED_LIMIT) {
        let weight = exp(s - newMax);
        runningSum += weight;
        for (var c = 0u; c < COLS; c++) {
          let d = p + c * TPR;
          if (d < D) { acc[c] += weight * kvTile[jj * D + d]; }
        }
      }
    }
    runningMax = newMax;
  }

  if (i < seqLen) {
    // A row that saw no key (padding) writes out = 0 and lse = 0.
    let seen = runningSum > 0.0;
    let inverse = select(0.0, 1.0 / runningSum, seen);
    let oBase = ((b * P.heads + h) * seqLen + i) * D;
    for (var c = 0u; c < COLS; c++) {
      let d = p + c * TPR;
      if (d < D) { out[oBase + d] = acc[c] * inverse; }
    }
    if (p == 0u) {
      lse[(b * P.heads + h) * seqLen + i] = select(0.0, runningMax + log(runningSum), seen);
    }
  }
}
`;
}
