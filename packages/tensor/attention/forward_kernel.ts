/**
 * WGSL of the fused attention forward: one workgroup per (query tile, query
 * head, batch row) walks the active key tiles of its query tile with an online
 * softmax, so the T×T score matrix never exists.
 *
 * Register blocking: thread (g, t) owns query rows `g·RM … g·RM+RM−1` of the
 * tile. In the score loop it holds an RM × RN block of S (keys `t, t+TC, …`),
 * reading Q and K as `vec4` from workgroup memory, so RM + RN loads feed
 * 4·RM·RN FMAs. The scores are scaled into the exp2 domain, the row maxima
 * are exchanged once per tile through a small array of per-thread partial
 * maxima, P goes to workgroup memory once, and P·V accumulates into an RM × CV
 * block of `vec4` output columns (`t, t+TC, …`) in registers. Each thread keeps
 * its own partial row sums (same running max in every thread of a row group),
 * summed once at the end. K has one tile, V two (double buffered), so a key
 * tile costs three barriers.
 *
 * Subgroup variant (see `subgroups.ts`): the row maxima and the final row sums
 * are exchanged between the TC threads of a row with `subgroupShuffleXor`
 * butterflies, so the partial-maximum array, its writes and reads and one
 * barrier per key tile (and one at the end) disappear: two barriers per tile.
 *
 * Q, K, V may be stored as f16 and the output as f16 (`types`); the tiles are
 * widened to f32 when staged, so scores, softmax statistics and the P·V
 * accumulation are f32 either way.
 *
 * @module
 */

import { butterfly, invocationArgs, invocationIndex } from "./subgroups.ts";
import { type AttentionTiling, kernelLayout } from "./tiling.ts";
import { type AttentionTypes, F32_TYPES, MASK_WGSL, PARAMS_WGSL } from "./wgsl_common.ts";
import { LANES, loadRowFn, stageRows, storeRowFn, unroll, unroll2 } from "./wgsl_blocks.ts";

/**
 * Forward kernel source (bindings q, k, v, mask, out, lse; see `kernels.ts`).
 * Threads: `queryTile / rowsPerThread × threadsPerRow`. `types.operand` is
 * the storage of q, k, v, `types.output` that of out; `subgroups` selects the
 * subgroup exchanges (the caller checks `attentionSubgroups(threads, TC)`).
 */
export function forwardKernelSource(
  headDim: number,
  tiling: AttentionTiling,
  types: AttentionTypes = F32_TYPES,
  subgroups = false,
): string {
  const layout = kernelLayout("forward", headDim, tiling);
  const { rows: rm, cols: rn, chunks: cv, d4, stride4, threads, threadsPerRow: tc } = layout;
  const br = tiling.queryTile, bc = tiling.keyTile;
  const rowMax = (m: number) =>
    subgroups
      ? `      var tileMax = ${nestMax(Array.from({ length: rn }, (_, n) => `s${m}_${n}`))};
      ${butterfly("max", "tileMax", tc)}`
      : `      var tileMax = rowPart[(r0 + ${m}u) * TC];
      for (var u = 1u; u < TC; u++) { tileMax = max(tileMax, rowPart[(r0 + ${m}u) * TC + u]); }`;
  return /* wgsl */ `
${PARAMS_WGSL}
${MASK_WGSL}
${loadRowFn("q", headDim, types.operand)}
${loadRowFn("k", headDim, types.operand)}
${loadRowFn("v", headDim, types.operand)}
${storeRowFn("out", headDim, types.output)}
const BR: u32 = ${br}u;
const BC: u32 = ${bc}u;
const BC4: u32 = ${bc / 4}u;
const TC: u32 = ${tc}u;
const RM: u32 = ${rm}u;
const D4: u32 = ${d4}u;
const S4: u32 = ${stride4}u;
const THREADS: u32 = ${threads}u;

var<workgroup> qTile: array<vec4<f32>, ${br * stride4}>;
var<workgroup> kTile: array<vec4<f32>, ${bc * stride4}>;
var<workgroup> vTile: array<vec4<f32>, ${2 * bc * stride4}>;
var<workgroup> pTile: array<vec4<f32>, ${br * bc / 4}>;
${subgroups ? "" : `var<workgroup> rowPart: array<f32, ${br * tc}>;`}
var<workgroup> keyMeta: array<vec4<i32>, ${bc}>;
var<workgroup> listBounds: vec2<u32>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, ${invocationArgs(subgroups)}) {
  ${invocationIndex(subgroups)}
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
${stageRows("BR", "rowsHere", "qRow0", [{ load: "q", tile: "qTile", value: "qv" }])}
  let r0 = g * RM;
  let i0 = q0 + r0;
${unroll(rm, (m) => `  let qm${m} = tokenMeta(b, i0 + ${m}u);`)}
${unroll(rn, (n) => `  let j${n} = t + ${n * tc}u;`)}
${unroll(cv, (n) => `  let c${n} = min(t + ${n * tc}u, D4 - 1u);`)}
  let kvRow0 = (b * P.kvHeads + kvh) * seqLen;
  if (li == 0u) {
    let list = P.forwardTable + b * P.numQueryTiles + qt;
    listBounds = vec2<u32>(u32(mask[list]), u32(mask[list + 1u]));
  }
  let bounds = workgroupUniformLoad(&listBounds);
  let scoreScale = P.scale * LOG2E;

${unroll(rm, (m) => `  var runMax${m} = MASKED;\n  var rowSum${m} = 0.0;`)}
${unroll2(rm, cv, (m, n) => `  var o${m}_${n} = vec4<f32>(0.0);`)}
  var vBase = 0u;
  for (var e = bounds.x; e < bounds.y; e++) {
    let entry = u32(mask[e]);
    let k0 = (entry & ~FULL_TILE_BIT) * BC;
    let full = (entry & FULL_TILE_BIT) != 0u;
    let keysHere = min(BC, seqLen - k0);
    // K was last read before the previous tile's second barrier, V[vBase] two tiles ago.
${
    stageRows("BC", "keysHere", "kvRow0 + k0", [
      { load: "k", tile: "kTile", value: "kv" },
      { load: "v", tile: "vTile", value: "vv", offset: "vBase" },
    ], "    ")
  }
    for (var x = li; x < BC; x += THREADS) { keyMeta[x] = tokenMeta(b, k0 + x); }
    workgroupBarrier();
    // S block: RM + RN vec4 loads per 4·RM·RN FMAs.
${unroll2(rm, rn, (m, n) => `    var s${m}_${n} = 0.0;`)}
    for (var d = 0u; d < D4; d++) {
${unroll(rm, (m) => `      let a${m} = qTile[(r0 + ${m}u) * S4 + d];`)}
${unroll(rn, (n) => `      let kr${n} = kTile[j${n} * S4 + d];`)}
${unroll2(rm, rn, (m, n) => `      s${m}_${n} += dot(a${m}, kr${n});`)}
    }
${unroll(rn, (n) => `    let km${n} = keyMeta[j${n}];`)}
${
    unroll2(rm, rn, (m, n) =>
      `    s${m}_${n} = select(MASKED, s${m}_${n} * scoreScale, full || visible(qm${m}, i0 + ${m}u, km${n}, k0 + j${n}));`)
  }
${
    subgroups
      ? ""
      : `${
        unroll(rm, (m) =>
          `    rowPart[(r0 + ${m}u) * TC + t] = ${
            nestMax(Array.from({ length: rn }, (_, n) => `s${m}_${n}`))
          };`)
      }
    workgroupBarrier();`
  }
    // Row maxima (same value in every thread of the row group), P in registers and to memory.
${
    unroll(rm, (m) =>
      `    {
${rowMax(m)}
      let newMax = max(runMax${m}, tileMax);
      let rescale = exp2(runMax${m} - newMax);
      runMax${m} = newMax;
${
        unroll(rn, (n) =>
          `      let p${n} = select(0.0, exp2(s${m}_${n} - newMax), s${m}_${n} > MASKED_LIMIT);
      pTile[(r0 + ${m}u) * BC4 + j${n} / 4u][j${n} % 4u] = p${n};`)
      }
      rowSum${m} = rowSum${m} * rescale + ${
        Array.from({ length: rn }, (_, n) => `p${n}`).join(" + ")
      };
${unroll(cv, (n) => `      o${m}_${n} *= rescale;`)}
    }`)
  }
    workgroupBarrier();
    // P·V: RM + 4·CV vec4 loads per 16·RM·CV FMAs.
    for (var j4 = 0u; j4 < BC4; j4++) {
${unroll(rm, (m) => `      let pv${m} = pTile[(r0 + ${m}u) * BC4 + j4];`)}
${
    unroll(4, (lane) =>
      `      {
        let row = vBase + (4u * j4 + ${lane}u) * S4;
${unroll(cv, (n) => `        let w${n} = vTile[row + c${n}];`)}
${
        unroll2(rm, cv, (m, n) =>
          `        o${m}_${n} = fma(vec4<f32>(pv${m}.${LANES[lane]}), w${n}, o${m}_${n});`)
      }
      }`)
  }
    }
    vBase = BC * S4 - vBase;
  }

  // Row sums: each thread's share over its keys, added in a fixed order.
${
    subgroups ? "" : `${unroll(rm, (m) => `  rowPart[(r0 + ${m}u) * TC + t] = rowSum${m};`)}
  workgroupBarrier();`
  }
${
    unroll(rm, (m) =>
      `  {
    let r = r0 + ${m}u;
${
        subgroups
          ? `    var total = rowSum${m};
    ${butterfly("sum", "total", tc)}`
          : `    var total = 0.0;
    for (var u = 0u; u < TC; u++) { total += rowPart[r * TC + u]; }`
      }
    if (r < rowsHere) {
      // A row that saw no key (padding) writes out = 0 and lse = 0.
      let seen = total > 0.0;
      let inverse = select(0.0, 1.0 / total, seen);
${
        unroll(cv, (n) =>
          `      if (t + ${n * tc}u < D4) { store_out(qRow0 + r, t + ${
            n * tc
          }u, o${m}_${n} * inverse); }`)
      }
      if (t == 0u) { lse[qRow0 + r] = select(0.0, (runMax${m} + log2(total)) * LN2, seen); }
    }
  }`)
  }
}
`;
}

/** `max(a, max(b, …))` of WGSL expressions. */
function nestMax(args: string[]): string {
  if (args.length === 1) return args[0]!;
  return `max(${args[0]}, ${nestMax(args.slice(1))})`;
}
