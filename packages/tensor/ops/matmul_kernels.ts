/**
 * The matmul kernel family: a WGSL generator for register-blocked, tiled
 * matrix products, parameterised by tile sizes, global load width (vec4 or
 * scalar, chosen per operand and call), workgroup-memory buffering and
 * padding.
 *
 * Layout of one workgroup: it computes a BM×BN tile of C with
 * NT = (BM/TM)·(BN/TN) threads, each owning TM×TN outputs held in vec4
 * registers. Both operand tiles live in workgroup memory k-major
 * (`As[k][m]`, `Bs[k][n]`, as vec4 of consecutive m / n), which is the layout
 * the inner loop wants whatever the operands' transpose flags: an operand
 * whose contiguous dimension is k is transposed on its way into workgroup
 * memory (four scalar stores per vec4 load; `pad` shifts rows to spread the
 * banks), one contiguous along m / n is stored as loaded.
 *
 * A thread's rows and columns are strided by the thread grid (row group g of
 * thread ty is vec4 row `g·TY + ty`), so neighbouring threads read
 * neighbouring vec4s of workgroup memory and write neighbouring vec4s of C.
 *
 * Buffering:
 * - `single`: load → barrier → compute → barrier per K tile;
 * - `prefetch`: the next K tile's global loads are issued into registers
 *   before computing the current one (one workgroup buffer, two barriers);
 * - `double`: two workgroup buffers: the next tile is loaded into registers,
 *   the current one computed, then the registers stored into the other
 *   buffer (one barrier per K tile).
 *
 * Split-K (`splits` > 1): workgroup z enumerates (batch entry, K range); each
 * K range's raw partial products go to a scratch slab of their own and a
 * second pass (`matmul_splitk.ts`) sums the slabs in fixed order and applies
 * the epilogue, so results are deterministic (no float atomics).
 *
 * f16 operands are read as `vec4<f16>` (or scalar f16) and converted to f32
 * as they are loaded into the staging registers: workgroup tiles, FMAs and
 * accumulators are f32 whatever the operand types.
 *
 * @module
 */

import { defineKernel, kernelSource } from "../kernel.ts";

/** Tile configuration: BM×BN output tile per workgroup, BK deep, TM×TN per thread. */
export interface MatmulTiles {
  /** Output rows per workgroup. */
  bm: number;
  /** Output columns per workgroup. */
  bn: number;
  /** Reduction depth per tile step. */
  bk: number;
  /** Rows per thread. */
  tm: number;
  /** Columns per thread. */
  tn: number;
}

/** How K tiles move through workgroup memory (see the module docs). */
export type MatmulBuffering = "single" | "prefetch" | "double";

/** One member of the kernel family. */
export interface MatmulVariant extends MatmulTiles {
  /** Use vec4 global loads/stores for every operand whose shape and strides allow it. */
  vec4: boolean;
  /** K-tile buffering. */
  buffering: MatmulBuffering;
  /** Floats of padding after each k row of the workgroup tiles (0 or a multiple of 4). */
  pad: number;
  /**
   * Workgroup order: groups of this many tile rows sweep the columns
   * together, so the B tiles they share stay in L2 (1 or absent: plain
   * row-major order).
   */
  swizzle?: number;
}

/** Epilogue activation. */
export type Activation = "none" | "silu" | "gelu";

/** Everything that determines one generated kernel. */
export interface MatmulKernelSpec {
  /** The family member. */
  variant: MatmulVariant;
  /** Element type of A. */
  aType: "f32" | "f16";
  /** Element type of B. */
  bType: "f32" | "f16";
  /** A is stored [K, M]. */
  transA: boolean;
  /** B is stored [N, K]. */
  transB: boolean;
  /** A is read as vec4 (its contiguous extent, stride and offsets are multiples of 4). */
  vecA: boolean;
  /** B is read as vec4. */
  vecB: boolean;
  /** C is read/written as vec4. */
  vecC: boolean;
  /** A bias row vector is added in the epilogue. */
  bias: boolean;
  /** Activation applied in the epilogue. */
  activation: Activation;
  /**
   * Split-K: with more than 1, workgroup z enumerates (batch entry, K range)
   * and each writes its range's partial products, unscaled and without
   * epilogue, to a scratch slab of its own (`cSplitStride` apart); a second
   * pass (`matmul_splitk.ts`) sums the slabs in fixed order. The count itself
   * is a uniform: every split count shares one pipeline.
   */
  splits?: number;
}

/** The device limits a variant must respect. */
export interface MatmulLimits {
  /** `maxComputeWorkgroupStorageSize`. */
  maxComputeWorkgroupStorageSize: number;
  /** `maxComputeInvocationsPerWorkgroup`. */
  maxComputeInvocationsPerWorkgroup: number;
  /** `maxComputeWorkgroupSizeX`. */
  maxComputeWorkgroupSizeX: number;
}

/** Threads per workgroup of `v`. */
export function variantThreads(v: MatmulTiles): number {
  return (v.bm / v.tm) * (v.bn / v.tn);
}

/** Bytes of workgroup memory `v` declares. */
export function variantWorkgroupBytes(v: MatmulVariant): number {
  const copies = v.buffering === "double" ? 2 : 1;
  return copies * v.bk * (v.bm + v.pad + v.bn + v.pad) * 4;
}

/**
 * Why `v` cannot be generated or launched (within `limits` when given), or
 * `undefined` when it can.
 */
export function variantProblem(v: MatmulVariant, limits?: MatmulLimits): string | undefined {
  const ints = [v.bm, v.bn, v.bk, v.tm, v.tn, v.pad];
  if (ints.some((x) => !Number.isInteger(x) || x < 0) || Math.min(v.bm, v.bn, v.bk) <= 0) {
    return "tile sizes must be positive integers (pad ≥ 0)";
  }
  if (v.tm % 4 || v.tn % 4 || v.tm === 0 || v.tn === 0) {
    return `tm (${v.tm}) and tn (${v.tn}) must be positive multiples of 4 (vec4 registers)`;
  }
  if (v.bm % v.tm || v.bn % v.tn) return "bm % tm and bn % tn must be 0";
  if (v.bk % 4) return `bk (${v.bk}) must be a multiple of 4`;
  if (v.pad % 4) return `pad (${v.pad}) must be a multiple of 4`;
  const swizzle = v.swizzle ?? 1;
  if (!Number.isInteger(swizzle) || swizzle < 1) {
    return `swizzle (${v.swizzle}) must be a positive integer`;
  }
  if (!["single", "prefetch", "double"].includes(v.buffering)) {
    return `buffering "${v.buffering}" is not single, prefetch or double`;
  }
  if (!limits) return undefined;
  const threads = variantThreads(v);
  const maxThreads = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  if (threads > maxThreads) return `${threads} threads > device maximum ${maxThreads}`;
  const bytes = variantWorkgroupBytes(v);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    return `${bytes} B workgroup memory > device maximum ${limits.maxComputeWorkgroupStorageSize}`;
  }
  return undefined;
}

/** A short readable name, e.g. `128x128x16 8x8 double pad4 v4`. */
export function variantName(v: MatmulVariant): string {
  const swizzle = (v.swizzle ?? 1) > 1 ? ` sw${v.swizzle}` : "";
  return `${v.bm}x${v.bn}x${v.bk} ${v.tm}x${v.tn} ${v.buffering} pad${v.pad}${swizzle}${
    v.vec4 ? " v4" : " scalar"
  }`;
}

const ACT: Record<Activation, string> = {
  none: "v",
  silu: "v / (1.0 + exp(-v))",
  gelu: "0.5 * v * (1.0 + tanh(clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), " +
    "V(-15.0), V(15.0))))",
};

/** One operand's tile loader: register declarations, global → registers, registers → workgroup. */
interface Loader {
  decls: string;
  load: (k0: string) => string;
  store: (buf: string) => string;
}

/**
 * Builds the loader of one operand tile of `rows` (m or n) × BK into
 * workgroup array `ws` (row stride `stride` vec4s).
 */
function loader(
  name: "A" | "B",
  o: {
    rows: number;
    bk: number;
    threads: number;
    stride: number;
    /** The operand's contiguous dimension is k (it is transposed into workgroup memory). */
    kContiguous: boolean;
    vec: boolean;
    /** WGSL expressions: tile origin along rows, bound along rows, leading dimension, base. */
    origin: string;
    bound: string;
    ld: string;
    base: string;
  },
): Loader {
  const ws = `${name}s`;
  const width = o.vec ? 4 : 1;
  const count = (o.rows * o.bk) / width;
  const per = Math.ceil(count / o.threads);
  const guarded = count % o.threads !== 0;
  const regType = o.vec ? "vec4<f32>" : "f32";
  const zero = o.vec ? "vec4<f32>(0.0)" : "0.0";
  const decls = Array.from({ length: per }, (_, i) => `var r${name}${i}: ${regType};`).join(" ");
  // Per element e: `r` = row within the tile (m or n), `q` = k within the tile
  // (for vec loads along k: the k quad index).
  const coords = (e: string): string => {
    if (o.kContiguous) {
      const kPer = o.bk / width;
      return `let r = ${e} / ${kPer}u; let q = ${e} % ${kPer}u;`;
    }
    const rPer = o.rows / width;
    return `let q = ${e} / ${rPer}u; let r = ${e} % ${rPer}u;`;
  };
  const load = (k0: string): string => {
    const body = Array.from({ length: per }, (_, i) => {
      const e = `(tid + ${i * o.threads}u)`;
      // Global coordinates: g = row along m/n, k = reduction index (of the first lane).
      const gk = o.kContiguous ? `${k0} + q * ${width}u` : `${k0} + q`;
      const gr = o.kContiguous ? `${o.origin} + r` : `${o.origin} + r * ${width}u`;
      const idx = o.kContiguous ? `${o.base} + g * ${o.ld} + k` : `${o.base} + k * ${o.ld} + g`;
      const read = o.vec ? `${regType}(${name}[(${idx}) >> 2u])` : `f32(${name}[${idx}])`;
      const stmt = `{ ${coords(e)} let g = ${gr}; let k = ${gk}; r${name}${i} = ${zero};
      if (g < ${o.bound} && k < kEnd) { r${name}${i} = ${read}; } }`;
      return guarded ? `if (${e} < ${count}u) ${stmt}` : stmt;
    });
    return body.join("\n      ");
  };
  const store = (buf: string): string => {
    const body = Array.from({ length: per }, (_, i) => {
      const e = `(tid + ${i * o.threads}u)`;
      let stmt: string;
      if (o.kContiguous) {
        // Transpose: lane c of the register is k = q·width + c of row r.
        const lanes = o.vec ? [0, 1, 2, 3] : [0];
        const writes = lanes.map((c) => {
          const kk = o.vec ? `q * 4u + ${c}u` : "q";
          const v = o.vec ? `r${name}${i}[${c}]` : `r${name}${i}`;
          return `${ws}[${buf} + (${kk}) * ${o.stride}u + (r >> 2u)][r & 3u] = ${v};`;
        });
        stmt = `{ ${coords(e)} ${writes.join(" ")} }`;
      } else if (o.vec) {
        stmt = `{ ${coords(e)} ${ws}[${buf} + q * ${o.stride}u + r] = r${name}${i}; }`;
      } else {
        stmt = `{ ${
          coords(e)
        } ${ws}[${buf} + q * ${o.stride}u + (r >> 2u)][r & 3u] = r${name}${i}; }`;
      }
      return guarded ? `if (${e} < ${count}u) ${stmt}` : stmt;
    });
    return body.join("\n      ");
  };
  return { decls, load, store };
}

/**
 * WGSL computing the tile origin (m0, n0). With a swizzle of G, linear
 * workgroup ids walk G tile rows column by column (grouped ordering), so
 * concurrently running workgroups share B tiles as well as A tiles.
 */
function tileOrigin(swizzle: number, bm: number, bn: number): string {
  if (swizzle <= 1) return `let m0 = w.y * ${bm}u; let n0 = w.x * ${bn}u;`;
  return `let id = w.y * nw.x + w.x;
  let perGroup = ${swizzle}u * nw.x;
  let firstRow = (id / perGroup) * ${swizzle}u;
  let rows = min(nw.y - firstRow, ${swizzle}u);
  let inGroup = id % perGroup;
  let m0 = (firstRow + inGroup % rows) * ${bm}u; let n0 = (inGroup / rows) * ${bn}u;`;
}

/** Generates the WGSL of one kernel of the family. */
function matmulKernelBody(spec: MatmulKernelSpec): string {
  const v = spec.variant;
  const problem = variantProblem(v);
  if (problem) throw new Error(`matmul variant ${variantName(v)}: ${problem}`);
  const split = (spec.splits ?? 1) > 1;
  if (split && (spec.bias || spec.activation !== "none")) {
    // Partial sums must stay raw: the reduction pass applies bias and activation once.
    throw new Error("matmul split-K product: bias and activation belong to the reduction pass");
  }
  const TX = v.bn / v.tn, TY = v.bm / v.tm, NT = TX * TY;
  const SA = (v.bm + v.pad) / 4, SB = (v.bn + v.pad) / 4;
  const tileA = v.bk * SA, tileB = v.bk * SB;
  const copies = v.buffering === "double" ? 2 : 1;
  const ga = v.tm / 4, gb = v.tn / 4;
  const la = loader("A", {
    rows: v.bm,
    bk: v.bk,
    threads: NT,
    stride: SA,
    kContiguous: !spec.transA,
    vec: spec.vecA,
    origin: "m0",
    bound: "M",
    ld: "lda",
    base: "aBase",
  });
  const lb = loader("B", {
    rows: v.bn,
    bk: v.bk,
    threads: NT,
    stride: SB,
    kContiguous: spec.transB,
    vec: spec.vecB,
    origin: "n0",
    bound: "N",
    ld: "ldb",
    base: "bBase",
  });

  // Inner product over one K tile held at workgroup offsets (aBuf, bBuf).
  const accDecls: string[] = [];
  for (let r = 0; r < v.tm; r++) {
    for (let j = 0; j < gb; j++) accDecls.push(`var acc${r}_${j} = vec4<f32>(0.0);`);
  }
  const lanes = ["x", "y", "z", "w"];
  const fmas: string[] = [];
  for (let g = 0; g < ga; g++) fmas.push(`let a${g} = As[ao + ${g * TY}u + ty];`);
  for (let j = 0; j < gb; j++) fmas.push(`let b${j} = Bs[bo + ${j * TX}u + tx];`);
  for (let r = 0; r < v.tm; r++) {
    const a = `a${r >> 2}.${lanes[r & 3]}`;
    for (let j = 0; j < gb; j++) {
      fmas.push(`acc${r}_${j} = fma(vec4<f32>(${a}), b${j}, acc${r}_${j});`);
    }
  }
  const compute = (aBuf: string, bBuf: string) => `
    for (var kk = 0u; kk < ${v.bk}u; kk++) {
      let ao = ${aBuf} + kk * ${SA}u; let bo = ${bBuf} + kk * ${SB}u;
      ${fmas.join("\n      ")}
    }`;

  let loop: string;
  if (v.buffering === "single") {
    loop = `
  for (var k0 = kBegin; k0 < kEnd; k0 += ${v.bk}u) {
    ${la.load("k0")}
    ${lb.load("k0")}
    ${la.store("0u")}
    ${lb.store("0u")}
    workgroupBarrier();
    ${compute("0u", "0u")}
    workgroupBarrier();
  }`;
  } else if (v.buffering === "prefetch") {
    loop = `
  ${la.load("kBegin")}
  ${lb.load("kBegin")}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${v.bk}u) {
    ${la.store("0u")}
    ${lb.store("0u")}
    workgroupBarrier();
    if (k0 + ${v.bk}u < kEnd) {
      let kn = k0 + ${v.bk}u;
      ${la.load("kn")}
      ${lb.load("kn")}
    }
    ${compute("0u", "0u")}
    workgroupBarrier();
  }`;
  } else {
    loop = `
  ${la.load("kBegin")}
  ${lb.load("kBegin")}
  ${la.store("0u")}
  ${lb.store("0u")}
  workgroupBarrier();
  var cur = 0u;
  for (var k0 = kBegin; k0 < kEnd; k0 += ${v.bk}u) {
    let more = k0 + ${v.bk}u < kEnd;
    if (more) {
      let kn = k0 + ${v.bk}u;
      ${la.load("kn")}
      ${lb.load("kn")}
    }
    ${compute(`cur * ${tileA}u`, `cur * ${tileB}u`)}
    if (more) {
      let nxt = 1u - cur;
      ${la.store(`nxt * ${tileA}u`)}
      ${lb.store(`nxt * ${tileB}u`)}
    }
    workgroupBarrier();
    cur = 1u - cur;
  }`;
  }

  // Epilogue: thread row r is m = m0 + ((r/4)·TY + ty)·4 + r%4; column group j
  // covers n = n0 + (j·TX + tx)·4 + 0..3.
  const act = ACT[spec.activation];
  const stores: string[] = [];
  for (let r = 0; r < v.tm; r++) {
    const inner: string[] = [];
    for (let j = 0; j < gb; j++) {
      const n = `n0 + ${j * TX * 4}u + tx * 4u`;
      if (spec.vecC) {
        inner.push(`{ let n = ${n}; if (n < N) {
        let ci = cBase + m * ldc + n;
        var v = acc${r}_${j};
        if (accumulate != 0u) { v += C[ci >> 2u]; }
        ${
          spec.bias
            ? "v += vec4<f32>(BIAS[biasBase + n], BIAS[biasBase + n + 1u], " +
              "BIAS[biasBase + n + 2u], BIAS[biasBase + n + 3u]);"
            : ""
        }
        C[ci >> 2u] = ${act.replaceAll("V(", "vec4<f32>(")};
      } }`);
      } else {
        for (let c = 0; c < 4; c++) {
          inner.push(`{ let n = ${n} + ${c}u; if (n < N) {
        let ci = cBase + m * ldc + n;
        var v = acc${r}_${j}.${lanes[c]};
        if (accumulate != 0u) { v += C[ci]; }
        ${spec.bias ? "v += BIAS[biasBase + n];" : ""}
        C[ci] = ${act.replaceAll("V(", "f32(")};
      } }`);
        }
      }
    }
    stores.push(`{ let m = m0 + ${((r >> 2) * TY) * 4 + (r & 3)}u + ty * 4u;
    if (m < M) {
      ${inner.join("\n      ")}
    } }`);
  }

  return `
var<workgroup> As: array<vec4<f32>, ${copies * tileA}>;
var<workgroup> Bs: array<vec4<f32>, ${copies * tileB}>;
@compute @workgroup_size(${NT})
fn main(
  @builtin(workgroup_id) w: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let M = P.M; let N = P.N; let K = P.K;
  ${
    split
      ? `let split = w.z % P.splits; let z = w.z / P.splits;
  let kBegin = split * P.kChunk; let kEnd = min(K, kBegin + P.kChunk);
  let cBase = split * P.cSplitStride + z * P.cBatchStride;`
      : `let z = w.z; let kBegin = 0u; let kEnd = K;
  let cBase = P.cOffset + z * P.cBatchStride;`
  }
  let aBase = P.aOffset + z * P.aBatchStride;
  let bBase = P.bOffset + z * P.bBatchStride;
  let lda = P.lda; let ldb = P.ldb; let ldc = P.ldc;
  let accumulate = P.accumulate; let biasBase = P.biasBase;
  let tx = tid % ${TX}u; let ty = tid / ${TX}u;
  ${tileOrigin(v.swizzle ?? 1, v.bm, v.bn)}
  ${accDecls.join(" ")}
  ${la.decls}
  ${lb.decls}
  ${loop}
  ${stores.join("\n  ")}
  ${spec.bias ? "" : "let unusedBias = biasBase;"}
}`;
}

/** Element types of the three operands as the generated kernel binds them. */
function operandTypes(spec: MatmulKernelSpec): { a: string; b: string; c: string } {
  return {
    a: spec.vecA ? `vec4<${spec.aType}>` : spec.aType,
    b: spec.vecB ? `vec4<${spec.bType}>` : spec.bType,
    c: spec.vecC ? "vec4<f32>" : "f32",
  };
}

/** Pipeline-cache key of a spec: every field that changes the WGSL. */
export function matmulSpecKey(spec: MatmulKernelSpec): string {
  const flags = [spec.transA, spec.transB, spec.vecA, spec.vecB, spec.vecC, spec.bias]
    .map(Number).join("");
  return `${variantName(spec.variant)} ${spec.aType}${spec.bType} ${flags} ${spec.activation}${
    (spec.splits ?? 1) > 1 ? " splitk" : ""
  }`;
}

/**
 * The matmul kernel family as one kernel: C = op(A)·op(B) (+ bias,
 * activation), accumulating into C when \`accumulate\` is 1 (split bindings).
 */
export const MATMUL_KERNEL = defineKernel({
  name: "matmul",
  key: matmulSpecKey,
  uniforms: {
    M: "u32",
    N: "u32",
    K: "u32",
    aOffset: "u32",
    aBatchStride: "u32",
    bOffset: "u32",
    bBatchStride: "u32",
    cOffset: "u32",
    cBatchStride: "u32",
    lda: "u32",
    ldb: "u32",
    ldc: "u32",
    accumulate: "u32",
    biasBase: "u32",
    kChunk: "u32",
    splits: "u32",
    cSplitStride: "u32",
  },
  bindings: (spec: MatmulKernelSpec) => {
    const t = operandTypes(spec);
    return {
      C: { type: `array<${t.c}>`, access: "read_write" as const },
      A: { type: `array<${t.a}>` },
      B: { type: `array<${t.b}>` },
      BIAS: spec.bias ? { type: "array<f32>" } : undefined,
    };
  },
  source: matmulKernelBody,
});

/** The complete WGSL of one family member (what the pipeline cache compiles). */
export function matmulKernelCode(spec: MatmulKernelSpec): string {
  return kernelSource(MATMUL_KERNEL, spec);
}

const member = (
  bm: number,
  bn: number,
  bk: number,
  tm: number,
  tn: number,
  buffering: MatmulBuffering,
  pad: number,
  vec4 = true,
): MatmulVariant => ({ bm, bn, bk, tm, tn, vec4, buffering, pad });

/**
 * The curated members of the family: what the tests check and the tuner
 * sweeps by default. Members that exceed a device's workgroup memory or
 * thread limits are skipped there (`variantProblem`).
 */
export const MATMUL_FAMILY: readonly MatmulVariant[] = [
  member(64, 64, 16, 4, 4, "single", 0),
  member(64, 64, 16, 4, 4, "single", 0, false),
  member(64, 64, 16, 4, 4, "double", 4),
  member(64, 64, 32, 4, 4, "prefetch", 4),
  member(64, 64, 16, 8, 8, "double", 4),
  member(128, 64, 16, 8, 4, "double", 4),
  member(64, 128, 16, 4, 8, "double", 4),
  member(128, 64, 32, 8, 4, "prefetch", 4),
  member(128, 128, 8, 8, 8, "double", 4),
  member(128, 128, 8, 4, 8, "double", 4),
  member(128, 128, 16, 8, 8, "single", 0),
  member(128, 128, 16, 8, 8, "prefetch", 4),
  member(128, 128, 16, 8, 8, "double", 4),
  member(128, 128, 32, 8, 8, "single", 4),
  { ...member(128, 128, 8, 8, 8, "double", 4), swizzle: 8 },
  { ...member(64, 64, 16, 4, 4, "double", 4), swizzle: 4 },
];

/**
 * Every combination of tiles, depths, buffering and padding the generator
 * supports at sizes worth trying on a large GPU (the tuner's `--all` grid).
 */
export function matmulVariantGrid(): MatmulVariant[] {
  const tiles: [number, number, number, number][] = [
    [64, 64, 4, 4],
    [64, 64, 8, 8],
    [128, 64, 8, 4],
    [64, 128, 4, 8],
    [128, 128, 8, 8],
    [128, 128, 4, 8],
    [128, 128, 8, 4],
    [128, 256, 8, 8],
    [256, 128, 8, 8],
  ];
  const out: MatmulVariant[] = [];
  for (const [bm, bn, tm, tn] of tiles) {
    for (const bk of [8, 16, 32]) {
      for (const buffering of ["single", "prefetch", "double"] as const) {
        for (const pad of [0, 4]) {
          for (const swizzle of [1, 8]) {
            out.push({ ...member(bm, bn, bk, tm, tn, buffering, pad), swizzle });
          }
        }
      }
    }
  }
  return out;
}
