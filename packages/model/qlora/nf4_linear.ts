/**
 * `Nf4Linear`: a frozen linear layer whose weight stays NF4 on the GPU.
 * y = x·Wᵀ is a tiled matmul that dequantises W while loading each tile into
 * workgroup memory (no dequantised copy of W ever exists); the backward for
 * x, dx = dy·W, is the same kernel reading W untransposed. W gets no
 * gradient. Accumulation is f32.
 *
 * Compute dtype (bitsandbytes' `bnb_4bit_compute_dtype`): `f32` multiplies
 * the dequantised weight as is; `f16` and `bf16` round it (level·absmax,
 * computed in f32) to that type, as bitsandbytes' dequantisation does, and
 * the forward rounds the activations too. Products of two f16/bf16 values
 * are exact in f32, so the f32 accumulation matches a GEMM with f32
 * accumulation on half operands. The backward rounds only the weight: the
 * incoming gradient keeps f32, so small gradients do not underflow without
 * loss scaling. With `f16` the tiles live in f16 workgroup memory (half the
 * footprint).
 *
 * Tiles: 64×64 outputs per workgroup of 16×16 threads (4×4 each), K steps
 * of 16; bounds are checked, so any M, N, K works.
 *
 * Matrix units: with compute dtype `f16`, on a device with f16→f32 subgroup
 * matrices (Dawn on NVIDIA/AMD/Apple/Intel GPUs), a product that the route
 * would not round differently ({@link nf4MatrixRoute}) dequantises W to a
 * temporary f16 `[out, in]` (the values the tiled kernel stages; 117 MB for
 * a 7B MLP projection, returned to the pool at once) and multiplies on the
 * subgroup matrices, as bitsandbytes dequantises to the compute dtype and
 * calls a half GEMM for batched inputs.
 *
 * @module
 */

import {
  cast,
  currentDevice,
  defineKernel,
  defineOp,
  launch,
  maxBindingBytes,
  NF4_LEVELS,
  subgroupMatrixAvailable,
  subgroupMatrixMatmul,
  Tensor,
} from "@irforge/tensor";
import type { QuantizedLinear } from "../causal_lm.ts";
import { dynamicMapCached } from "./double_quant.ts";
import { type Nf4ComputeDtype, type Nf4Weight, toWords } from "./nf4_weight.ts";

const BM = 64, BN = 64, BK = 16, TM = 4, TN = 4;

/** WGSL `fn round_c(v: f32) -> <tile type>` rounding a value to the compute dtype. */
function roundingCode(compute: Nf4ComputeDtype): string {
  switch (compute) {
    case "f32":
      return "fn round_c(v: f32) -> f32 { return v; }";
    case "f16":
      return "fn round_c(v: f32) -> f16 { return f16(v); }";
    case "bf16":
      // Round to nearest even on the upper 16 bits; NaN passes through.
      return `fn round_c(v: f32) -> f32 {
  if (v != v) { return v; }
  let b = bitcast<u32>(v);
  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
}`;
  }
}

/** The bindings `weightAt` reads: codes, and plain or double-quantised absmax. */
function weightBindingDecls(doubleQuant: boolean) {
  return {
    CODES: { type: "array<u32>" },
    ABSMAX: doubleQuant ? undefined : { type: "array<f32>" },
    QABS: doubleQuant ? { type: "array<u32>" } : undefined,
    QSCALE: doubleQuant ? { type: "array<f32>" } : undefined,
    QMAP: doubleQuant ? { type: "array<f32>" } : undefined,
  };
}

/** The buffers of {@link weightBindingDecls} for `weight`. */
function weightBuffers(weight: Nf4Linear) {
  const dq = weight.storage.doubleQuant;
  return {
    CODES: weight.storage.codes.buffer,
    ABSMAX: dq ? undefined : weight.storage.absmax!.buffer,
    QABS: dq?.codes.buffer,
    QSCALE: dq?.scales.buffer,
    QMAP: dq?.map.buffer,
  };
}

/** One specialisation of the NF4 matmul kernel. */
interface Nf4KernelSpec {
  /** Activation dtype. */
  aType: "f32" | "f16";
  /** Forward (x·Wᵀ) or backward for x (dy·W). */
  transposed: boolean;
  /** Absmax values are themselves quantised (double quantisation). */
  doubleQuant: boolean;
  /** `bnb_4bit_compute_dtype`. */
  compute: Nf4ComputeDtype;
}

/**
 * C[M, N] = A[M, K] · op(W) where W is the NF4 weight `[out, in]`:
 * `transposed` (forward): op(W)[k, n] = W[n, k] (N = out, K = in);
 * otherwise (backward for x): op(W)[k, n] = W[k, n] (K = out, N = in).
 */
const NF4_MATMUL = defineKernel({
  name: "nf4_linear",
  key: (s: Nf4KernelSpec) =>
    `${s.aType} ${s.transposed ? "t" : "n"} ${s.doubleQuant ? "dq" : "abs"} ${s.compute}`,
  uniforms: { M: "u32", N: "u32", K: "u32", wIn: "u32", blockSize: "u32", offset: "f32" },
  bindings: (s) => ({
    C: { type: "array<f32>", access: "read_write" as const },
    A: { type: `array<${s.aType}>` },
    ...weightBindingDecls(s.doubleQuant),
  }),
  source: (s) => kernelBody(s),
});

/** WGSL `fn weightAt(e: u32) -> f32`: element e of W in f32 (level · absmax). */
function weightAtCode(doubleQuant: boolean): string {
  const levels = NF4_LEVELS.map((v) => v.toPrecision(17)).join(", ");
  const absmaxOf = doubleQuant
    ? `let q = (QABS[blk >> 2u] >> (8u * (blk & 3u))) & 255u;
  return QMAP[q] * QSCALE[blk / 256u] + P.offset;`
    : `return ABSMAX[blk];`;
  return `var<private> LEVELS: array<f32, 16> = array<f32, 16>(${levels});
fn absmaxOf(blk: u32) -> f32 {
  ${absmaxOf}
}
fn weightAt(e: u32) -> f32 {
  // Element 2j is the high nibble of byte j; bytes are little-endian in words.
  let shift = 8u * ((e >> 1u) & 3u) + select(0u, 4u, (e & 1u) == 0u);
  let code = (CODES[e >> 3u] >> shift) & 15u;
  return LEVELS[code] * absmaxOf(e / P.blockSize);
}`;
}

function kernelBody({ transposed, doubleQuant, compute }: Nf4KernelSpec): string {
  // Forward: both operands rounded; backward (dx): only the weight (module docs).
  const roundA = transposed && compute !== "f32";
  const bTile = compute === "f16" ? "f16" : "f32";
  const aTile = roundA && compute === "f16" ? "f16" : "f32";
  const loadB = transposed
    ? "let kk = e % BK; let col = e / BK; let elem = n * wIn + k;"
    : "let kk = e / BN; let col = e % BN; let elem = k * wIn + n;";
  return `
const BM = ${BM}u; const BN = ${BN}u; const BK = ${BK}u; const TM = ${TM}u; const TN = ${TN}u;
var<workgroup> As: array<${aTile}, ${BK * BM}>;
var<workgroup> Bs: array<${bTile}, ${BK * BN}>;
${roundingCode(compute)}
${weightAtCode(doubleQuant)}
@compute @workgroup_size(${BN / TN}, ${BM / TM})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let M = P.M; let N = P.N; let K = P.K; let wIn = P.wIn;
  let tid = l.y * ${BN / TN}u + l.x;
  let m0 = w.y * BM; let n0 = w.x * BN;
  var acc: array<f32, ${TM * TN}>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var e = tid; e < BM * BK; e += ${(BM / TM) * (BN / TN)}u) {
      let kk = e % BK; let row = e / BK;
      let m = m0 + row;
      var v = 0.0;
      if (m < M && k0 + kk < K) { v = f32(A[m * K + k0 + kk]); }
      As[kk * BM + row] = ${roundA ? "round_c(v)" : `${aTile}(v)`};
    }
    for (var e = tid; e < BN * BK; e += ${(BM / TM) * (BN / TN)}u) {
      ${loadB.replace("let elem", "let n = n0 + col; let k = k0 + kk; let elem")}
      var v = 0.0;
      if (n < N && k < K) { v = weightAt(elem); }
      Bs[kk * BN + col] = round_c(v);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, ${TM}>;
      var b: array<f32, ${TN}>;
      for (var i = 0u; i < TM; i++) { a[i] = f32(As[kk * BM + l.y * TM + i]); }
      for (var j = 0u; j < TN; j++) { b[j] = f32(Bs[kk * BN + l.x * TN + j]); }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + l.y * TM + i;
    if (m >= M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + l.x * TN + j;
      if (n < N) { C[m * N + n] = acc[i * TN + j]; }
    }
  }
}`;
}

const DEQUANT_THREADS = 256;

/**
 * W16[e] = f16(level · absmax) for every element of the weight: the weight
 * exactly as the f16-compute NF4 kernel stages it, for the subgroup-matrix
 * route (bitsandbytes likewise dequantises to the compute dtype, then runs a
 * half GEMM).
 */
const NF4_DEQUANT_F16 = defineKernel({
  name: "nf4_dequantize_f16",
  key: (s: { doubleQuant: boolean }) => (s.doubleQuant ? "dq" : "abs"),
  uniforms: { count: "u32", rowGroups: "u32", blockSize: "u32", offset: "f32" },
  bindings: (s) => ({
    W16: { type: "array<f16>", access: "read_write" as const },
    ...weightBindingDecls(s.doubleQuant),
  }),
  source: ({ doubleQuant }) => `
${weightAtCode(doubleQuant)}
@compute @workgroup_size(${DEQUANT_THREADS})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let e = (w.y * P.rowGroups + w.x) * ${DEQUANT_THREADS}u + li;
  if (e < P.count) { W16[e] = f16(weightAt(e)); }
}`,
});

/**
 * The weight dequantised to f16 `[out, in]` (what the f16-compute kernel
 * multiplies; see {@link NF4_DEQUANT_F16}). Needs `shader-f16`.
 */
export function dequantizeNf4LinearF16(weight: Nf4Linear): Tensor {
  const count = weight.shape[0] * weight.shape[1];
  const w16 = Tensor.empty([...weight.shape], "f16", "nf4 dequantized");
  if (count === 0) return w16;
  const groups = Math.ceil(count / DEQUANT_THREADS);
  const x = Math.min(groups, 65535);
  const dq = weight.storage.doubleQuant;
  launch(
    NF4_DEQUANT_F16,
    { doubleQuant: dq !== null },
    {
      W16: w16.buffer,
      ...weightBuffers(weight),
    },
    { count, rowGroups: x, blockSize: weight.blockSize, offset: dq?.offset ?? 0 },
    [x, Math.ceil(groups / x)],
    "nf4_dequantize_f16",
  );
  return w16;
}

let matrixRouteForTesting: boolean | undefined;

/**
 * Testing hook: `false` keeps every NF4 product on the tiled kernel, `true`
 * sends f16-compute products to the subgroup-matrix route whatever the
 * device (it then fails where the device lacks the feature), `undefined`
 * restores the automatic choice.
 */
export function setNf4MatrixRouteForTesting(on: boolean | undefined): void {
  matrixRouteForTesting = on;
}

/**
 * Whether an NF4 product runs as dequantise-to-f16 + subgroup-matrix matmul
 * (the matrix units) instead of the tiled NF4 kernel: with compute dtype
 * f16, where the device has f16→f32 subgroup matrices, and when that changes
 * no rounding: the forward rounds both operands to f16 on either route; the
 * backward only when the incoming gradient is f16 already (an f32 gradient
 * stays unrounded on the tiled kernel). bf16 has no WGSL type and no
 * subgroup-matrix configuration, so bf16 compute stays tiled.
 */
export function nf4MatrixRoute(
  compute: Nf4ComputeDtype,
  aType: string,
  transposed: boolean,
  matrixUnits: boolean = subgroupMatrixAvailable(currentDevice()),
): boolean {
  if (compute !== "f16" || !(transposed || aType === "f16")) return false;
  return matrixRouteForTesting ?? matrixUnits;
}

/** Runs C = A · op(W) for a 2-D `a` `[M, K]`; see {@link NF4_MATMUL}. */
function nf4Matmul(a: Tensor, weight: Nf4Linear, transposed: boolean): Tensor {
  const [out, inFeatures] = weight.shape;
  const [M, K] = a.shape as [number, number];
  const N = transposed ? out : inFeatures;
  const expectedK = transposed ? inFeatures : out;
  if (K !== expectedK) {
    throw new Error(`nf4 linear: input ${a} does not fit weight [${out}, ${inFeatures}]`);
  }
  if (a.dtype !== "f32" && a.dtype !== "f16") {
    throw new Error(`nf4 linear: input must be f32/f16, got ${a}`);
  }
  if (M > 0 && N > 0 && nf4MatrixRoute(weight.computeDtype, a.dtype, transposed)) {
    const w16 = dequantizeNf4LinearF16(weight);
    try {
      return subgroupMatrixMatmul(a, w16, { transB: transposed });
    } finally {
      w16.dispose();
    }
  }
  const c = Tensor.empty([M, N], "f32");
  if (M === 0 || N === 0) return c;
  const dq = weight.storage.doubleQuant;
  launch(
    NF4_MATMUL,
    { aType: a.dtype, transposed, doubleQuant: dq !== null, compute: weight.computeDtype },
    {
      C: c.buffer,
      A: a.buffer,
      ...weightBuffers(weight),
    },
    { M, N, K, wIn: inFeatures, blockSize: weight.blockSize, offset: dq?.offset ?? 0 },
    [Math.ceil(N / BN), Math.ceil(M / BM)],
    transposed ? "nf4_linear" : "nf4_linear_dx",
  );
  return c;
}

const nf4LinearOp = defineOp<{ weight: Nf4Linear; halfGradient: boolean }>({
  name: "nf4_linear",
  forward: ([x], { weight }) => {
    const inFeatures = x!.shape[x!.rank - 1]!;
    const x2 = x!.shareAs([x!.size / inFeatures, inFeatures]);
    const y = nf4Matmul(x2, weight, true);
    return { output: y.shareAs([...x!.shape.slice(0, -1), weight.shape[0]]) };
  },
  backward: (dy, { inputs, attrs }) => {
    const x = inputs[0]!;
    const out = attrs.weight.shape[0];
    const dy2 = dy.shareAs([dy.size / out, out]);
    // Under autocast the gradient is an f16 operand (then the matrix route applies, see
    // nf4MatrixRoute); otherwise it keeps f32.
    const g = attrs.halfGradient && dy2.dtype !== "f16" ? cast(dy2, "f16") : dy2;
    const dx = nf4Matmul(g, attrs.weight, false).shareAs(x.shape);
    if (g !== dy2) g.dispose();
    return [x.dtype === "f16" ? cast(dx, "f16") : dx];
  },
});

/** GPU storage of an {@link Nf4Linear}. */
export interface Nf4Storage {
  /** Packed codes as u32 words. */
  codes: Tensor;
  /** f32 absmax per block (plain). */
  absmax: Tensor | null;
  /** Double-quantised absmax. */
  doubleQuant: { codes: Tensor; scales: Tensor; map: Tensor; offset: number } | null;
}

/**
 * A frozen NF4 linear layer implementing `QuantizedLinear` (see module docs).
 * Ownership: owns its GPU storage (`dispose()`).
 */
export class Nf4Linear implements QuantizedLinear {
  /** `[out, in]`. */
  readonly shape: [number, number];
  /** Elements per absmax block. */
  readonly blockSize: number;
  /** GPU buffers. */
  readonly storage: Nf4Storage;
  /** What the matmul rounds its operands to (module docs). */
  readonly computeDtype: Nf4ComputeDtype;

  private constructor(
    shape: [number, number],
    blockSize: number,
    storage: Nf4Storage,
    computeDtype: Nf4ComputeDtype,
  ) {
    this.shape = shape;
    this.blockSize = blockSize;
    this.storage = storage;
    this.computeDtype = computeDtype;
  }

  /**
   * Uploads a host-quantised weight. `computeDtype` (default `f32`) is what
   * the matmul rounds operands to; `f16` needs the adapter's `shader-f16`.
   */
  static upload(w: Nf4Weight, options: { computeDtype?: Nf4ComputeDtype } = {}): Nf4Linear {
    const computeDtype = options.computeDtype ?? "f32";
    if (computeDtype === "f16" && !currentDevice().hasF16) {
      throw new Error(
        "nf4 linear: compute dtype f16 needs the adapter's shader-f16 feature, which it lacks " +
          "(use bf16 or f32)",
      );
    }
    const limit = maxBindingBytes();
    if (w.codes.length > limit) {
      throw new Error(`nf4 linear: ${w.codes.length} bytes of codes exceed one binding (${limit})`);
    }
    const words = (bytes: Uint8Array) =>
      Tensor.fromArray(toWords(bytes), [Math.max(1, Math.ceil(bytes.length / 4))], "u32").keep();
    const codes = words(w.codes);
    const storage: Nf4Storage = w.doubleQuant
      ? {
        codes,
        absmax: null,
        doubleQuant: {
          codes: words(w.doubleQuant.codes),
          scales: Tensor.fromArray(w.doubleQuant.scales, [w.doubleQuant.scales.length]).keep(),
          map: Tensor.fromArray(dynamicMapCached(), [256]).keep(),
          offset: w.doubleQuant.offset,
        },
      }
      : {
        codes,
        absmax: Tensor.fromArray(w.absmax!, [w.absmax!.length]).keep(),
        doubleQuant: null,
      };
    return new Nf4Linear(w.shape, w.blockSize, storage, computeDtype);
  }

  /**
   * y = x·Wᵀ, x `[..., in]` → `[..., out]` f32; differentiable in x only.
   * `halfGradient` rounds the incoming gradient to f16 before dx = dy·W
   * (mixed precision under loss scaling; `CausalLM.autocast` sets it).
   */
  apply(x: Tensor, options: { halfGradient?: boolean } = {}): Tensor {
    if (x.shape[x.rank - 1] !== this.shape[1]) {
      throw new Error(`nf4 linear: input ${x} does not take weight [${this.shape.join(", ")}]`);
    }
    return nf4LinearOp([x], { weight: this, halfGradient: options.halfGradient ?? false });
  }

  /** Bytes of GPU storage held (codes + scales). */
  get byteLength(): number {
    const s = this.storage;
    const parts = [
      s.codes,
      s.absmax,
      s.doubleQuant?.codes,
      s.doubleQuant?.scales,
      s.doubleQuant?.map,
    ];
    return parts.reduce((sum, t) => sum + (t ? t.byteLength : 0), 0);
  }

  /** Frees the GPU storage. */
  dispose(): void {
    const s = this.storage;
    for (
      const t of [
        s.codes,
        s.absmax,
        s.doubleQuant?.codes,
        s.doubleQuant?.scales,
        s.doubleQuant?.map,
      ]
    ) {
      t?.dispose();
    }
  }
}
