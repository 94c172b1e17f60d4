/**
 * WGSL of the fused attention backward (flash-attention-2 style, no atomics):
 *
 * 1. row stats: Δᵢ = Σ_d dOᵢ·Oᵢ, packed with Lᵢ as `vec2(L, Δ)` per row;
 * 2. dK/dV: one workgroup per (key tile, kv head, batch row) keeps its K and V
 *    tile in workgroup memory and walks every query head of its group and every
 *    active query tile, so the GQA reduction happens in registers;
 * 3. dQ: one workgroup per (query tile, query head, batch row) walks the active
 *    key tiles, like the forward.
 *
 * With Pᵢⱼ = exp(scale·qᵢ·kⱼ − Lᵢ) and dSᵢⱼ = Pᵢⱼ(dOᵢ·vⱼ − Δᵢ):
 * dV = Σᵢ Pᵢⱼ dOᵢ, dK = scale Σᵢ dSᵢⱼ qᵢ, dQ = scale Σⱼ dSᵢⱼ kⱼ.
 *
 * @module
 */

import type { AttentionTiling } from "./tiling.ts";
import { MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";

/** Row-stats kernel. Bindings: 0 params, 1 out, 2 dOut, 3 lse, 4 stats (vec2 per row). */
export function rowStatsKernelSource(headDim: number): string {
  return /* wgsl */ `
${PARAMS_WGSL}
const D: u32 = ${headDim}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let row = (wid.y * groups.x + wid.x) * 64u + li;
  if (row >= P.batch * P.heads * P.seqLen) { return; }
  var delta = 0.0;
  for (var d = 0u; d < D; d++) { delta += dOut[row * D + d] * out[row * D + d]; }
  stats[row] = vec2<f32>(lse[row], delta);
}
`;
}

/**
 * dK/dV kernel. Bindings: 0 params, 1 q, 2 k, 3 v, 4 dOut, 5 stats, 6 mask, 7 dK, 8 dV.
 * Threads: `keyTile × threadsPerRow`; thread (jj, p) owns key jj of the tile,
 * the probabilities of query rows p, p+P, … and gradient columns p, p+P, ….
 */
export function keyValueGradKernelSource(headDim: number, tiling: AttentionTiling): string {
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
const THREADS: u32 = ${bc * tpr}u;

var<workgroup> keyTile: array<f32, ${bc * headDim}>;
var<workgroup> valueTile: array<f32, ${bc * headDim}>;
var<workgroup> queryTile: array<f32, ${br * headDim}>;
var<workgroup> gradTile: array<f32, ${br * headDim}>;
var<workgroup> probTile: array<f32, ${bc * br}>;
var<workgroup> dScoreTile: array<f32, ${bc * br}>;
var<workgroup> queryMeta: array<vec4<i32>, ${br}>;
var<workgroup> queryStats: array<vec2<f32>, ${br}>;
var<workgroup> listBounds: vec2<u32>;

@compute @workgroup_size(${bc * tpr})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let kt = wid.x;
  let kvh = wid.y;
  let b = wid.z;
  let seqLen = P.seqLen;
  let group = P.heads / P.kvHeads;
  let jj = li / TPR;
  let p = li % TPR;
  let k0 = kt * BC;
  let j = k0 + jj;
  let keysHere = min(BC, seqLen - k0);
  let kvBase = ((b * P.kvHeads + kvh) * seqLen + k0) * D;
  for (var x = li; x < BC * D; x += THREADS) {
    if (x < keysHere * D) {
      keyTile[x] = k[kvBase + x];
      valueTile[x] = v[kvBase + x];
    } else {
      keyTile[x] = 0.0;
      valueTile[x] = 0.0;
    }
  }
  let keyMeta = tokenMeta(b, j);
  if (li == 0u) {
    let list = P.backwardTable + b * P.numKeyTiles + kt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);

  var keyGrad: array<f32, ${columnsPerThread}>;
  var valueGrad: array<f32, ${columnsPerThread}>;
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    for (var e = bounds.x; e < bounds.y; e++) {
      let entry = u32(mask[e]);
      let q0 = (entry & ~FULL_TILE_BIT) * BR;
      let full = (entry & FULL_TILE_BIT) != 0u;
      let rowsHere = min(BR, seqLen - q0);
      let rowBase = (b * P.heads + h) * seqLen + q0;
      workgroupBarrier(); // the previous query tile is no longer read
      for (var x = li; x < BR * D; x += THREADS) {
        if (x < rowsHere * D) {
          queryTile[x] = q[rowBase * D + x];
          gradTile[x] = dOut[rowBase * D + x];
        } else {
          queryTile[x] = 0.0;
          gradTile[x] = 0.0;
        }
      }
      for (var x = li; x < BR; x += THREADS) {
        queryMeta[x] = tokenMeta(b, q0 + x);
        if (x < rowsHere) { queryStats[x] = stats[rowBase + x]; } else { queryStats[x] = vec2<f32>(0.0); }
      }
      workgroupBarrier();
      for (var ii = p; ii < BR; ii += TPR) {
        var prob = 0.0;
        var dScore = 0.0;
        if (full || visible(queryMeta[ii], q0 + ii, keyMeta, j)) {
          var score = 0.0;
          var dProb = 0.0;
          for (var d = 0u; d < D; d++) {
            score += queryTile[ii * D + d] * keyTile[jj * D + d];
            dProb += gradTile[ii * D + d] * valueTile[jj * D + d];
          }
          let rowStats = queryStats[ii];
          prob = exp(score * P.scale - rowStats.x);
          dScore = prob * (dProb - rowStats.y);
        }
        probTile[jj * BR + ii] = prob;
        dScoreTile[jj * BR + ii] = dScore;
      }
      workgroupBarrier();
      for (var ii = 0u; ii < BR; ii++) {
        let prob = probTile[jj * BR + ii];
        let dScore = dScoreTile[jj * BR + ii];
        for (var c = 0u; c < COLS; c++) {
          let d = p + c * TPR;
          if (d < D) {
            valueGrad[c] += prob * gradTile[ii * D + d];
            keyGrad[c] += dScore * queryTile[ii * D + d];
          }
        }
      }
    }
  }
  if (j < seqLen) {
    let base = ((b * P.kvHeads + kvh) * seqLen + j) * D;
    for (var c = 0u; c < COLS; c++) {
      let d = p + c * TPR;
      if (d < D) {
        dK[base + d] = keyGrad[c] * P.scale;
        dV[base + d] = valueGrad[c];
      }
    }
  }
}
`;
}

/**
 * dQ kernel. Bindings: 0 params, 1 q, 2 k, 3 v, 4 dOut, 5 stats, 6 mask, 7 dQ.
 * Threads: `queryTile × threadsPerRow`; thread (r, p) owns query row r, the
 * keys p, p+P, … of each tile and gradient columns p, p+P, ….
 */
export function queryGradKernelSource(headDim: number, tiling: AttentionTiling): string {
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
var<workgroup> gradTile: array<f32, ${br * headDim}>;
var<workgroup> keyTile: array<f32, ${bc * headDim}>;
var<workgroup> valueTile: array<f32, ${bc * headDim}>;
var<workgroup> dScoreTile: array<f32, ${br * bc}>;
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
  let q0 = qt * BR;
  let i = q0 + r;
  let rowsHere = min(BR, seqLen - q0);
  let rowBase = (b * P.heads + h) * seqLen + q0;
  for (var x = li; x < BR * D; x += THREADS) {
    if (x < rowsHere * D) {
      queryTile[x] = q[rowBase * D + x];
      gradTile[x] = dOut[rowBase * D + x];
    } else {
      queryTile[x] = 0.0;
      gradTile[x] = 0.0;
    }
  }
  let queryMeta = tokenMeta(b, i);
  var rowStats = vec2<f32>(0.0);
  if (i < seqLen) { rowStats = stats[rowBase + r]; }
  let kvBase = (b * P.kvHeads + kvh) * seqLen * D;
  if (li == 0u) {
    let list = P.forwardTable + b * P.numQueryTiles + qt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);

  var queryGrad: array<f32, ${columnsPerThread}>;
  for (var e = bounds.x; e < bounds.y; e++) {
    let entry = u32(mask[e]);
    let k0 = (entry & ~FULL_TILE_BIT) * BC;
    let full = (entry & FULL_TILE_BIT) != 0u;
    let keysHere = min(BC, seqLen - k0);
    workgroupBarrier(); // the previous key tile is no longer read
    for (var x = li; x < BC * D; x += THREADS) {
      if (x < keysHere * D) {
        keyTile[x] = k[kvBase + k0 * D + x];
        valueTile[x] = v[kvBase + k0 * D + x];
      } else {
        keyTile[x] = 0.0;
        valueTile[x] = 0.0;
      }
    }
    for (var x = li; x < BC; x += THREADS) { keyMeta[x] = tokenMeta(b, k0 + x); }
    workgroupBarrier();
    for (var jj = p; jj < BC; jj += TPR) {
      var dScore = 0.0;
      if (full || visible(queryMeta, i, keyMeta[jj], k0 + jj)) {
        var score = 0.0;
        var dProb = 0.0;
        for (var d = 0u; d < D; d++) {
          score += queryTile[r * D + d] * keyTile[jj * D + d];
          dProb += gradTile[r * D + d] * valueTile[jj * D + d];
        }
        dScore = exp(score * P.scale - rowStats.x) * (dProb - rowStats.y);
      }
      dScoreTile[r * BC + jj] = dScore;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < BC; jj++) {
      let dScore = dScoreTile[r * BC + jj];
      for (var c = 0u; c < COLS; c++) {
        let d = p + c * TPR;
        if (d < D) { queryGrad[c] += dScore * keyTile[jj * D + d]; }
      }
    }
  }
  if (i < seqLen) {
    let base = (rowBase + r) * D;
    for (var c = 0u; c < COLS; c++) {
      let d = p + c * TPR;
      if (d < D) { dQ[base + d] = queryGrad[c] * P.scale; }
    }
  }
}
`;
}
