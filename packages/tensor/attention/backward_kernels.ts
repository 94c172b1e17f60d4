/**
 * WGSL of the fused attention backward (flash-attention-2 style, no atomics):
 *
 * 1. row stats: Δᵢ = Σ_d dOᵢ·Oᵢ, packed with Lᵢ·log₂e as `vec2(L₂, Δ)` per row;
 * 2. dK/dV: one workgroup per (key tile, kv head, split, batch row) keeps its
 *    K and V tile in workgroup memory and walks its share of the (query head of
 *    the group × active query tile) items, so the GQA reduction happens in
 *    registers. With one split it writes dK and dV; with several, each split
 *    writes a partial and {@linkcode splitSumKernelSource} adds them in split
 *    order (deterministic, no atomics);
 * 3. dQ: one workgroup per (query tile, query head, batch row) walks the active
 *    key tiles, like the forward.
 *
 * With Pᵢⱼ = exp(scale·qᵢ·kⱼ − Lᵢ) and dSᵢⱼ = Pᵢⱼ(dOᵢ·vⱼ − Δᵢ):
 * dV = Σᵢ Pᵢⱼ dOᵢ, dK = scale Σᵢ dSᵢⱼ qᵢ, dQ = scale Σⱼ dSᵢⱼ kⱼ.
 *
 * Both gradient kernels are register blocked like the forward (see
 * `forward_kernel.ts`): a thread holds an RM × RN block of S and dP, computed
 * in one loop over `vec4` columns (2·(RM + RN) loads per 8·RM·RN FMAs), and an
 * RM × CV block of `vec4` gradient columns in registers.
 *
 * Inputs may be stored as f16 (`types`, see `wgsl_common.ts`): tiles are
 * widened to f32 when staged, so every product, sum and statistic is f32;
 * gradients are rounded to their storage type once, when written (split
 * partials stay f32 and are rounded by the ordered sum).
 *
 * @module
 */

import { butterfly, invocationArgs, invocationIndex } from "./subgroups.ts";
import { type AttentionTiling, kernelLayout } from "./tiling.ts";
import { type AttentionTypes, F32_TYPES, MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";
import {
  type AttentionElement,
  LANES,
  loadRowFn,
  stageRows,
  storeRowFn,
  unroll,
  unroll2,
} from "./wgsl_blocks.ts";

/**
 * Row-stats kernel. Bindings: 0 params, 1 out, 2 dOut (both stored as
 * `output`), 3 lse, 4 stats (vec2 per row). With `lanes` > 1 (subgroups),
 * `lanes` consecutive invocations share a row: each sums every lanes-th
 * column (neighbouring lanes read neighbouring columns) and a subgroup
 * butterfly adds the partial sums; with 1, one invocation walks the row.
 */
export function rowStatsKernelSource(
  headDim: number,
  output: AttentionElement = "f32",
  lanes = 1,
): string {
  const subgroups = lanes > 1;
  const widen = (x: string) => output === "f32" ? x : `f32(${x})`;
  return /* wgsl */ `
${PARAMS_WGSL}
const D: u32 = ${headDim}u;
const LANES: u32 = ${lanes}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  ${invocationArgs(subgroups)},
) {
  ${invocationIndex(subgroups)}
  let n = (wid.y * groups.x + wid.x) * 64u + li;
  let row = n / LANES;
  let lane = n % LANES;
  let valid = row < P.batch * P.heads * P.seqLen;
  var delta = 0.0;
  // A fixed trip count keeps the subgroup exchange below in uniform control flow.
  for (var d0 = 0u; d0 < D; d0 += LANES) {
    let d = d0 + lane;
    if (valid && d < D) { delta += ${widen("dOut[row * D + d]")} * ${widen("out[row * D + d]")}; }
  }
  ${butterfly("sum", "delta", lanes)}
  // L in the exp2 domain, so the gradient kernels recompute P = exp2(s·scale·log2 e − L·log2 e).
  if (valid && lane == 0u) { stats[row] = vec2<f32>(lse[row] * LOG2E, delta); }
}
`;
}

/**
 * dK/dV kernel (bindings q, k, v, dOut, stats, mask, dK, dV; see `kernels.ts`).
 * Grid (key tile, kv head, batch row · splits). Thread (g, t) owns keys
 * `g·RM …` of the tile, query columns `t, t+TC, …` of the S block and `vec4`
 * gradient columns `t, t+TC, …`. With `P.splits` > 1, split s writes rows
 * `s·B·Hkv·T + …` of dK and dV (partials).
 */
export function keyValueGradKernelSource(
  headDim: number,
  tiling: AttentionTiling,
  types: AttentionTypes = F32_TYPES,
  partials = false,
): string {
  const layout = kernelLayout("dkdv", headDim, tiling);
  const { rows: rm, cols: rn, chunks: cv, d4, stride4, threads, threadsPerRow: tc } = layout;
  const br = tiling.queryTile, bc = tiling.keyTile;
  const grad = partials ? "f32" : types.operand;
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${loadRowFn("q", headDim, types.operand)}
${loadRowFn("k", headDim, types.operand)}
${loadRowFn("v", headDim, types.operand)}
${loadRowFn("dOut", headDim, types.output)}
${storeRowFn("dK", headDim, grad)}
${storeRowFn("dV", headDim, grad)}
const BR: u32 = ${br}u;
const BR4: u32 = ${br / 4}u;
const BC: u32 = ${bc}u;
const TC: u32 = ${tc}u;
const RM: u32 = ${rm}u;
const D4: u32 = ${d4}u;
const S4: u32 = ${stride4}u;
const THREADS: u32 = ${threads}u;

var<workgroup> kTile: array<vec4<f32>, ${bc * stride4}>;
var<workgroup> vTile: array<vec4<f32>, ${bc * stride4}>;
var<workgroup> qTile: array<vec4<f32>, ${br * stride4}>;
var<workgroup> gTile: array<vec4<f32>, ${br * stride4}>;
var<workgroup> pTile: array<vec4<f32>, ${bc * br / 4}>;
var<workgroup> dsTile: array<vec4<f32>, ${bc * br / 4}>;
var<workgroup> queryMeta: array<vec4<i32>, ${br}>;
var<workgroup> queryStats: array<vec2<f32>, ${br}>;
var<workgroup> listBounds: vec2<u32>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let kt = wid.x;
  let kvh = wid.y;
  let b = wid.z / P.splits;
  let split = wid.z % P.splits;
  let seqLen = P.seqLen;
  let group = P.heads / P.kvHeads;
  let g = li / TC;
  let t = li % TC;
  let k0 = kt * BC;
  let keysHere = min(BC, seqLen - k0);
  let kvRow0 = (b * P.kvHeads + kvh) * seqLen + k0;
${
    stageRows("BC", "keysHere", "kvRow0", [
      { load: "k", tile: "kTile", value: "kv" },
      { load: "v", tile: "vTile", value: "vv" },
    ])
  }
  let r0 = g * RM;
${unroll(rm, (m) => `  let km${m} = tokenMeta(b, k0 + r0 + ${m}u);`)}
${unroll(rn, (n) => `  let i${n} = t + ${n * tc}u;`)}
${unroll(cv, (n) => `  let c${n} = min(t + ${n * tc}u, D4 - 1u);`)}
  if (li == 0u) {
    let list = P.backwardTable + b * P.numKeyTiles + kt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);
  let listLength = bounds.y - bounds.x;
  // This split's share of the (query head of the group, active query tile) items.
  let items = group * listLength;
  let first = (split * items) / P.splits;
  let last = ((split + 1u) * items) / P.splits;
  let scoreScale = P.scale * LOG2E;

${
    unroll2(rm, cv, (m, n) =>
      `  var dk${m}_${n} = vec4<f32>(0.0);\n  var dv${m}_${n} = vec4<f32>(0.0);`)
  }
  for (var item = first; item < last; item++) {
    let h = kvh * group + item / listLength;
    let entry = u32(mask[bounds.x + item % listLength]);
    let q0 = (entry & ~FULL_TILE_BIT) * BR;
    let full = (entry & FULL_TILE_BIT) != 0u;
    let rowsHere = min(BR, seqLen - q0);
    let qRow0 = (b * P.heads + h) * seqLen + q0;
    workgroupBarrier(); // the previous query tile is no longer read
${
    stageRows("BR", "rowsHere", "qRow0", [
      { load: "q", tile: "qTile", value: "qv" },
      { load: "dOut", tile: "gTile", value: "gv" },
    ], "    ")
  }
    for (var x = li; x < BR; x += THREADS) {
      queryMeta[x] = tokenMeta(b, q0 + x);
      if (x < rowsHere) { queryStats[x] = stats[qRow0 + x]; } else { queryStats[x] = vec2<f32>(0.0); }
    }
    workgroupBarrier();
    // Sᵀ and dPᵀ blocks in one loop: 2·(RM + RN) vec4 loads per 8·RM·RN FMAs.
${unroll2(rm, rn, (m, n) => `    var s${m}_${n} = 0.0;\n    var dp${m}_${n} = 0.0;`)}
    for (var d = 0u; d < D4; d++) {
${
    unroll(rm, (m) =>
      `      let kr${m} = kTile[(r0 + ${m}u) * S4 + d];\n      let vr${m} = vTile[(r0 + ${m}u) * S4 + d];`)
  }
${
    unroll(rn, (n) =>
      `      let a${n} = qTile[i${n} * S4 + d];\n      let o${n} = gTile[i${n} * S4 + d];`)
  }
${
    unroll2(rm, rn, (m, n) =>
      `      s${m}_${n} += dot(kr${m}, a${n});\n      dp${m}_${n} += dot(vr${m}, o${n});`)
  }
    }
${unroll(rn, (n) => `    let qm${n} = queryMeta[i${n}];\n    let st${n} = queryStats[i${n}];`)}
${
    unroll2(rm, rn, (m, n) =>
      `    {
      let p = select(0.0, exp2(s${m}_${n} * scoreScale - st${n}.x), full || visible(qm${n}, q0 + i${n}, km${m}, k0 + r0 + ${m}u));
      pTile[(r0 + ${m}u) * BR4 + i${n} / 4u][i${n} % 4u] = p;
      dsTile[(r0 + ${m}u) * BR4 + i${n} / 4u][i${n} % 4u] = p * (dp${m}_${n} - st${n}.y);
    }`)
  }
    workgroupBarrier();
    // dV += Pᵀ·dO, dK += dSᵀ·Q: 2·RM + 8·CV vec4 loads per 32·RM·CV FMAs.
    for (var i4 = 0u; i4 < BR4; i4++) {
${
    unroll(rm, (m) =>
      `      let pv${m} = pTile[(r0 + ${m}u) * BR4 + i4];\n      let ds${m} = dsTile[(r0 + ${m}u) * BR4 + i4];`)
  }
${
    unroll(4, (lane) =>
      `      {
        let row = (4u * i4 + ${lane}u) * S4;
${
        unroll(cv, (n) =>
          `        let go${n} = gTile[row + c${n}];\n        let qa${n} = qTile[row + c${n}];`)
      }
${
        unroll2(rm, cv, (m, n) =>
          `        dv${m}_${n} = fma(vec4<f32>(pv${m}.${LANES[lane]}), go${n}, dv${m}_${n});
        dk${m}_${n} = fma(vec4<f32>(ds${m}.${LANES[lane]}), qa${n}, dk${m}_${n});`)
      }
      }`)
  }
    }
  }
  let outRow0 = split * P.batch * P.kvHeads * seqLen + kvRow0;
${
    unroll(rm, (m) =>
      `  if (r0 + ${m}u < keysHere) {
${
        unroll(cv, (n) =>
          `    if (t + ${n * tc}u < D4) {
      store_dK(outRow0 + r0 + ${m}u, t + ${n * tc}u, dk${m}_${n} * P.scale);
      store_dV(outRow0 + r0 + ${m}u, t + ${n * tc}u, dv${m}_${n});
    }`)
      }
  }`)
  }
}
`;
}

/**
 * Second pass of a split dK/dV: `dK = Σ_s dKParts[s]`, `dV = Σ_s dVParts[s]`
 * in split order (bindings dKParts, dVParts (f32), dK, dV (stored as
 * `operand`); one thread per element).
 */
export function splitSumKernelSource(headDim: number, operand: AttentionElement = "f32"): string {
  const narrow = (x: string) => operand === "f32" ? x : `${operand}(${x})`;
  return /* wgsl */ `
const D: u32 = ${headDim}u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let n = P.batch * P.kvHeads * P.seqLen * D;
  let x = (wid.y * groups.x + wid.x) * 64u + li;
  if (x >= n) { return; }
  var k = 0.0;
  var v = 0.0;
  for (var s = 0u; s < P.splits; s++) {
    k += dKParts[s * n + x];
    v += dVParts[s * n + x];
  }
  dK[x] = ${narrow("k")};
  dV[x] = ${narrow("v")};
}
`;
}

/**
 * dQ kernel (bindings q, k, v, dOut, stats, mask, dQ; see `kernels.ts`).
 * Thread (g, t) owns query rows `g·RM …`, keys `t, t+TC, …` of the S block and
 * `vec4` gradient columns `t, t+TC, …`; K is double buffered, so a key tile
 * costs two barriers.
 */
export function queryGradKernelSource(
  headDim: number,
  tiling: AttentionTiling,
  types: AttentionTypes = F32_TYPES,
): string {
  const layout = kernelLayout("dq", headDim, tiling);
  const { rows: rm, cols: rn, chunks: cv, d4, stride4, threads, threadsPerRow: tc } = layout;
  const br = tiling.queryTile, bc = tiling.keyTile;
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${loadRowFn("q", headDim, types.operand)}
${loadRowFn("k", headDim, types.operand)}
${loadRowFn("v", headDim, types.operand)}
${loadRowFn("dOut", headDim, types.output)}
${storeRowFn("dQ", headDim, types.operand)}
const BR: u32 = ${br}u;
const BC: u32 = ${bc}u;
const BC4: u32 = ${bc / 4}u;
const TC: u32 = ${tc}u;
const RM: u32 = ${rm}u;
const D4: u32 = ${d4}u;
const S4: u32 = ${stride4}u;
const THREADS: u32 = ${threads}u;

var<workgroup> qTile: array<vec4<f32>, ${br * stride4}>;
var<workgroup> gTile: array<vec4<f32>, ${br * stride4}>;
var<workgroup> kTile: array<vec4<f32>, ${2 * bc * stride4}>;
var<workgroup> vTile: array<vec4<f32>, ${bc * stride4}>;
var<workgroup> dsTile: array<vec4<f32>, ${br * bc / 4}>;
var<workgroup> keyMeta: array<vec4<i32>, ${bc}>;
var<workgroup> listBounds: vec2<u32>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let qt = wid.x;
  let h = wid.y;
  let b = wid.z;
  let seqLen = P.seqLen;
  let kvh = h / (P.heads / P.kvHeads);
  let g = li / TC;
  let t = li % TC;
  let q0 = qt * BR;
  let rowsHere = min(BR, seqLen - q0);
  let qRow0 = (b * P.heads + h) * seqLen + q0;
${
    stageRows("BR", "rowsHere", "qRow0", [
      { load: "q", tile: "qTile", value: "qv" },
      { load: "dOut", tile: "gTile", value: "gv" },
    ])
  }
  let r0 = g * RM;
  let i0 = q0 + r0;
${unroll(rm, (m) => `  let qm${m} = tokenMeta(b, i0 + ${m}u);`)}
${
    unroll(rm, (m) =>
      `  var st${m} = vec2<f32>(0.0);\n  if (r0 + ${m}u < rowsHere) { st${m} = stats[qRow0 + r0 + ${m}u]; }`)
  }
${unroll(rn, (n) => `  let j${n} = t + ${n * tc}u;`)}
${unroll(cv, (n) => `  let c${n} = min(t + ${n * tc}u, D4 - 1u);`)}
  let kvRow0 = (b * P.kvHeads + kvh) * seqLen;
  if (li == 0u) {
    let list = P.forwardTable + b * P.numQueryTiles + qt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);
  let scoreScale = P.scale * LOG2E;

${unroll2(rm, cv, (m, n) => `  var dq${m}_${n} = vec4<f32>(0.0);`)}
  var kBase = 0u;
  for (var e = bounds.x; e < bounds.y; e++) {
    let entry = u32(mask[e]);
    let k0 = (entry & ~FULL_TILE_BIT) * BC;
    let full = (entry & FULL_TILE_BIT) != 0u;
    let keysHere = min(BC, seqLen - k0);
    // V was last read before the previous tile's second barrier, K[kBase] two tiles ago.
${
    stageRows("BC", "keysHere", "kvRow0 + k0", [
      { load: "k", tile: "kTile", value: "kv", offset: "kBase" },
      { load: "v", tile: "vTile", value: "vv" },
    ], "    ")
  }
    for (var x = li; x < BC; x += THREADS) { keyMeta[x] = tokenMeta(b, k0 + x); }
    workgroupBarrier();
    // S and dP blocks in one loop: 2·(RM + RN) vec4 loads per 8·RM·RN FMAs.
${unroll2(rm, rn, (m, n) => `    var s${m}_${n} = 0.0;\n    var dp${m}_${n} = 0.0;`)}
    for (var d = 0u; d < D4; d++) {
${
    unroll(rm, (m) =>
      `      let a${m} = qTile[(r0 + ${m}u) * S4 + d];\n      let o${m} = gTile[(r0 + ${m}u) * S4 + d];`)
  }
${
    unroll(rn, (n) =>
      `      let kr${n} = kTile[kBase + j${n} * S4 + d];\n      let vr${n} = vTile[j${n} * S4 + d];`)
  }
${
    unroll2(rm, rn, (m, n) =>
      `      s${m}_${n} += dot(a${m}, kr${n});\n      dp${m}_${n} += dot(o${m}, vr${n});`)
  }
    }
${unroll(rn, (n) => `    let km${n} = keyMeta[j${n}];`)}
${
    unroll2(rm, rn, (m, n) =>
      `    {
      let p = select(0.0, exp2(s${m}_${n} * scoreScale - st${m}.x), full || visible(qm${m}, i0 + ${m}u, km${n}, k0 + j${n}));
      dsTile[(r0 + ${m}u) * BC4 + j${n} / 4u][j${n} % 4u] = p * (dp${m}_${n} - st${m}.y);
    }`)
  }
    workgroupBarrier();
    // dQ += dS·K: RM + 4·CV vec4 loads per 16·RM·CV FMAs.
    for (var j4 = 0u; j4 < BC4; j4++) {
${unroll(rm, (m) => `      let ds${m} = dsTile[(r0 + ${m}u) * BC4 + j4];`)}
${
    unroll(4, (lane) =>
      `      {
        let row = kBase + (4u * j4 + ${lane}u) * S4;
${unroll(cv, (n) => `        let w${n} = kTile[row + c${n}];`)}
${
        unroll2(rm, cv, (m, n) =>
          `        dq${m}_${n} = fma(vec4<f32>(ds${m}.${LANES[lane]}), w${n}, dq${m}_${n});`)
      }
      }`)
  }
    }
    kBase = BC * S4 - kBase;
  }
${
    unroll(rm, (m) =>
      `  if (r0 + ${m}u < rowsHere) {
${
        unroll(cv, (n) =>
          `    if (t + ${n * tc}u < D4) { store_dQ(qRow0 + r0 + ${m}u, t + ${
            n * tc
          }u, dq${m}_${n} * P.scale); }`)
      }
  }`)
  }
}
`;
}
