/**
 * Matrix multiplication on subgroup matrices (Dawn's
 * `chromium-experimental-subgroup-matrix`: Vulkan cooperative matrices, i.e.
 * NVIDIA Tensor Cores; Metal simdgroup matrices): C = op(A)·op(B) with f16
 * operands and f32 accumulation and result.
 *
 * Each workgroup computes a `BM×BN` tile of C. Per K step it stages a
 * `BM×BK` tile of op(A) and a `BK×BN` tile of op(B) in workgroup memory as
 * f16 (converting f32 operands, applying the transposes, zero-filling past
 * the edges; each operand is read along its contiguous dimension, so the
 * `[N, K]` weights of `transB` are read row by row, not a column at a time),
 * then each owning subgroup multiply-accumulates its block of
 * fragments (`m0×n0`, the adapter's configuration): it loads the block's
 * `rows` left and `cols` right fragments once with `subgroupMatrixLoad` and
 * does all `rows·cols` `subgroupMatrixMultiplyAccumulate`s on them (register
 * blocking: 0.5 fragment loads per multiply-accumulate for 4×4 blocks,
 * where dealing single fragments costs 2; see {@link fragmentBlocks}).
 * Blocks are assigned by `subgroup_id` to the `threads / subgroupMaxSize`
 * subgroups the tile was sized for, so the kernel is correct whatever
 * subgroup size the driver picks (the workgroup's x size is a multiple of
 * `subgroupMaxSize`, as the feature requires; extra subgroups only stage).
 * Interior tiles store straight to C with `subgroupMatrixStore`; edge tiles
 * stage one fragment per owner in workgroup memory and copy its in-bounds
 * part.
 *
 * Only adapters listing an f16→f32 configuration are used
 * ({@link subgroupMatrixAvailable}); f16→f16 accumulation would lose the f32
 * accumulation every other matmul path has.
 *
 * @example f16 operands on the matrix units, where the device has them
 * ```ts ignore
 * import { getDevice, Tensor } from "@irforge/tensor";
 * import { subgroupMatrixAvailable, subgroupMatrixMatmul } from "./matmul_subgroup_matrix.ts";
 *
 * const device = await getDevice();
 * if (subgroupMatrixAvailable(device)) {
 *   const a = Tensor.fromArray(new Float32Array(64 * 32).fill(1), [64, 32], "f16");
 *   const w = Tensor.fromArray(new Float32Array(48 * 32).fill(1), [48, 32], "f16");
 *   const y = subgroupMatrixMatmul(a, w, { transB: true }); // [64, 48] f32, every entry 32
 * }
 * ```
 *
 * @module
 */

import type { Device, SubgroupMatrixConfig } from "../device.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, maxBindingBytes } from "../runtime.ts";
import { Tensor } from "../tensor.ts";

/** One specialisation of the kernel. */
export interface SubgroupMatrixSpec {
  /** Fragment rows (config M). */
  m0: number;
  /** Fragment columns (config N). */
  n0: number;
  /** Fragment depth (config K). */
  k0: number;
  /** Fragments per workgroup tile along M and N. */
  fm: number;
  /** See {@link fm}. */
  fn: number;
  /** Fragment depths per staged K step (BK = k0·ks). */
  ks: number;
  /** Invocations per workgroup: a multiple of the adapter's `subgroupMaxSize`. */
  threads: number;
  /** Fewest subgroups the workgroup can have (threads / subgroupMaxSize). */
  minSubgroups: number;
  /** Operand storage types (converted to f16 while staging). */
  aType: "f32" | "f16";
  /** See {@link aType}. */
  bType: "f32" | "f16";
  /** A stored [K, M]. */
  transA: boolean;
  /** B stored [N, K]. */
  transB: boolean;
}

/**
 * How the tile's `fm×fn` fragments are shared among the subgroups: the
 * first `owners` subgroups each own a `rows×cols` block of fragments
 * (subgroup `sg` the block at fragment row `(sg / gridCols)·rows`, column
 * `(sg % gridCols)·cols`); further subgroups (smaller ones than the largest
 * size the kernel was sized for) only stage tiles. Per K step a block loads
 * `rows` left and `cols` right fragments for `rows·cols` multiply-accumulates.
 */
export interface FragmentBlocks {
  /** Subgroups that own a block. */
  owners: number;
  /** Blocks along N (subgroup `sg` owns block row `sg / gridCols`, column `sg % gridCols`). */
  gridCols: number;
  /** Fragment rows per block. */
  rows: number;
  /** Fragment columns per block. */
  cols: number;
}

/**
 * The blocks of `spec`: `min(minSubgroups, fm·fn)` owners (all powers of
 * two), split so each block is as square as possible (fewest fragment loads
 * per multiply-accumulate).
 */
export function fragmentBlocks(
  spec: Pick<SubgroupMatrixSpec, "fm" | "fn" | "minSubgroups">,
): FragmentBlocks {
  const owners = Math.min(spec.minSubgroups, spec.fm * spec.fn);
  let best: FragmentBlocks | undefined;
  for (let gridRows = 1; gridRows <= owners; gridRows *= 2) {
    const gridCols = owners / gridRows;
    if (spec.fm % gridRows !== 0 || spec.fn % gridCols !== 0) continue;
    const candidate = { owners, gridCols, rows: spec.fm / gridRows, cols: spec.fn / gridCols };
    if (!best || fragmentLoadsPerMma(candidate) < fragmentLoadsPerMma(best)) best = candidate;
  }
  if (!best) {
    throw new Error(
      `subgroup-matrix matmul: ${owners} subgroups cannot split ${spec.fm}×${spec.fn} fragments ` +
        "(powers of two expected)",
    );
  }
  return best;
}

/** Fragment loads from workgroup memory per multiply-accumulate: (rows + cols) / (rows·cols). */
export function fragmentLoadsPerMma(blocks: Pick<FragmentBlocks, "rows" | "cols">): number {
  return (blocks.rows + blocks.cols) / (blocks.rows * blocks.cols);
}

/**
 * Workgroup-memory elements read per FMA by the fragment loads of `spec`:
 * a block's `rows` left fragments (m0·k0 each) and `cols` right fragments
 * (k0·n0) feed rows·cols·m0·n0·k0 FMAs, so (rows·m0 + cols·n0) / (rows·cols·m0·n0):
 * 1/32 for 4×4 blocks of 16×16 fragments (a single fragment per load pair: 1/8).
 */
export function subgroupMatrixWorkgroupLoadsPerFma(
  spec: Pick<SubgroupMatrixSpec, "m0" | "n0" | "fm" | "fn" | "minSubgroups">,
): number {
  const { rows, cols } = fragmentBlocks(spec);
  return (rows * spec.m0 + cols * spec.n0) / (rows * cols * spec.m0 * spec.n0);
}

/** Workgroup memory of `spec`: f16 A and B tiles, one f32 fragment per owner for edge stores. */
export function subgroupMatrixWorkgroupBytes(spec: SubgroupMatrixSpec): number {
  const bm = spec.m0 * spec.fm, bn = spec.n0 * spec.fn, bk = spec.k0 * spec.ks;
  return 2 * (bm * bk + bk * bn) + 4 * fragmentBlocks(spec).owners * spec.m0 * spec.n0;
}

/** The kernel: C = op(A)·op(B), f16 fragments, f32 accumulators. */
export const SUBGROUP_MATRIX_MATMUL = defineKernel({
  name: "matmul-subgroup-matrix",
  key: (s: SubgroupMatrixSpec) =>
    `${s.m0}x${s.n0}x${s.k0} f${s.fm}x${s.fn} ks${s.ks} t${s.threads}/${s.minSubgroups} ` +
    `${s.aType}${s.transA ? "T" : ""} ${s.bType}${s.transB ? "T" : ""}`,
  uniforms: {
    M: "u32",
    N: "u32",
    K: "u32",
    lda: "u32",
    ldb: "u32",
    ldc: "u32",
    aBatchStride: "u32",
    bBatchStride: "u32",
    cBatchStride: "u32",
  },
  bindings: (s: SubgroupMatrixSpec) => ({
    C: { type: "array<f32>", access: "read_write" },
    A: { type: `array<${s.aType}>` },
    B: { type: `array<${s.bType}>` },
  }),
  source: (s) => {
    const BM = s.m0 * s.fm, BN = s.n0 * s.fn, BK = s.k0 * s.ks;
    const { owners, gridCols, rows, cols } = fragmentBlocks(s);
    const fragment = s.m0 * s.n0;
    const left = `subgroup_matrix_left<f16, ${s.k0}, ${s.m0}>`;
    const right = `subgroup_matrix_right<f16, ${s.n0}, ${s.k0}>`;
    const result = `subgroup_matrix_result<f32, ${s.n0}, ${s.m0}>`;
    const aIndex = s.transA ? "gk * P.lda + gm" : "gm * P.lda + gk";
    const bIndex = s.transB ? "gn * P.ldb + gk" : "gk * P.ldb + gn";
    // Staging walks each operand along its contiguous dimension (consecutive invocations read
    // consecutive addresses): k for A [M, K] and B stored [N, K], m for A stored [K, M], n for B.
    const aStaging = s.transA
      ? `let kk = i / ${BM}u; let mm = i % ${BM}u; let gm = row0 + mm; let gk = k0 + kk;`
      : `let mm = i / ${BK}u; let kk = i % ${BK}u; let gm = row0 + mm; let gk = k0 + kk;`;
    const bStaging = s.transB
      ? `let nn = i / ${BK}u; let kk = i % ${BK}u; let gk = k0 + kk; let gn = col0 + nn;`
      : `let kk = i / ${BN}u; let nn = i % ${BN}u; let gk = k0 + kk; let gn = col0 + nn;`;
    const blockRows = [...Array(rows).keys()], blockCols = [...Array(cols).keys()];
    const pairs = blockRows.flatMap((i) => blockCols.map((j) => [i, j] as const));
    // Unrolled: each fragment of the block is a named variable, loaded once per K step.
    const accDecls = pairs.map(([i, j]) => `var acc${i}_${j}: ${result};`).join("\n  ");
    const loads = [
      ...blockRows.map((i) =>
        `let l${i} = subgroupMatrixLoad<${left}, row_major>(
            &tA, (fr0 + ${i}u) * ${s.m0 * BK}u + kk * ${s.k0}u, ${BK}u);`
      ),
      ...blockCols.map((j) =>
        `let r${j} = subgroupMatrixLoad<${right}, row_major>(
            &tB, kk * ${s.k0 * BN}u + (fc0 + ${j}u) * ${s.n0}u, ${BN}u);`
      ),
    ].join("\n          ");
    const mmas = pairs.map(([i, j]) =>
      `acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, acc${i}_${j});`
    ).join("\n          ");
    const interiorStores = pairs.map(([i, j]) =>
      `subgroupMatrixStore<row_major>(&C,
        cBase + (row0 + (fr0 + ${i}u) * ${s.m0}u) * P.ldc + col0 + (fc0 + ${j}u) * ${s.n0}u,
        acc${i}_${j}, P.ldc);`
    ).join("\n      ");
    // Edge tiles: each owner stages one fragment at a time in its own slot, its lanes copy the
    // slot's in-bounds part; the barriers run in workgroup-uniform control flow.
    const edgeStores = pairs.map(([i, j]) => `
    if (owner) { subgroupMatrixStore<row_major>(&tC, sg * ${fragment}u, acc${i}_${j}, ${s.n0}u); }
    workgroupBarrier();
    if (owner) {
      for (var e = lane; e < ${fragment}u; e += sgSize) {
        let gm = row0 + (fr0 + ${i}u) * ${s.m0}u + e / ${s.n0}u;
        let gn = col0 + (fc0 + ${j}u) * ${s.n0}u + e % ${s.n0}u;
        if (gm < M && gn < N) { C[cBase + gm * P.ldc + gn] = tC[sg * ${fragment}u + e]; }
      }
    }
    workgroupBarrier();`).join("");
    return `
var<workgroup> tA: array<f16, ${BM * BK}>;
var<workgroup> tB: array<f16, ${BK * BN}>;
var<workgroup> tC: array<f32, ${owners * fragment}>;

@compute @workgroup_size(${s.threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) sgSize: u32) {
  let M = P.M; let N = P.N; let K = P.K;
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  let aBase = wg.z * P.aBatchStride;
  let bBase = wg.z * P.bBatchStride;
  let cBase = wg.z * P.cBatchStride;
  // Subgroup-uniform: whether this subgroup owns a block, and the block's first fragment.
  let owner = sg < ${owners}u;
  let fr0 = (sg / ${gridCols}u) * ${rows}u;
  let fc0 = (sg % ${gridCols}u) * ${cols}u;
  ${accDecls}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    for (var i = lid; i < ${BM * BK}u; i += ${s.threads}u) {
      ${aStaging}
      var v = f16(0.0);
      if (gm < M && gk < K) { v = f16(A[aBase + ${aIndex}]); }
      tA[mm * ${BK}u + kk] = v;
    }
    for (var i = lid; i < ${BK * BN}u; i += ${s.threads}u) {
      ${bStaging}
      var v = f16(0.0);
      if (gk < K && gn < N) { v = f16(B[bBase + ${bIndex}]); }
      tB[kk * ${BN}u + nn] = v;
    }
    workgroupBarrier();
    if (owner) {
      for (var kk = 0u; kk < ${s.ks}u; kk++) {
          ${loads}
          ${mmas}
      }
    }
    workgroupBarrier();
  }
  // Workgroup-uniform: the whole tile is inside C.
  if (row0 + ${BM}u <= M && col0 + ${BN}u <= N) {
    if (owner) {
      ${interiorStores}
    }
  } else {${edgeStores}
  }
}`;
  },
});

/** Options of {@link subgroupMatrixMatmul}. */
export interface SubgroupMatrixMatmulOptions {
  /** Use Aᵀ: `a` is stored [..., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: `b` is stored [..., N, K] (the HF linear weight layout). */
  transB?: boolean;
}

/** The adapter's f16→f32 configuration to use, or `undefined`. */
export function subgroupMatrixConfig(device: Device): SubgroupMatrixConfig | undefined {
  const usable = device.subgroupMatrixConfigs.filter((c) =>
    c.componentType === "f16" && c.resultComponentType === "f32"
  );
  // The largest fragment does the most work per load; ties keep the driver's (preferred) order.
  return usable.reduce<SubgroupMatrixConfig | undefined>(
    (best, c) => (!best || c.M * c.N * c.K > best.M * best.N * best.K ? c : best),
    undefined,
  );
}

/**
 * Why the subgroup-matrix matmul cannot run on `device`, or `null` when it
 * can: it needs Dawn's subgroup-matrix feature, `shader-f16`, the
 * `subgroup_id` builtin and an f16→f32 configuration.
 */
export function subgroupMatrixUnavailableReason(device: Device): string | null {
  if (!device.subgroupMatrix) {
    return `${device.provider}'s adapter offers no chromium-experimental-subgroup-matrix`;
  }
  if (!device.hasF16) return "the adapter lacks shader-f16";
  if (!device.subgroups) return "the adapter lacks subgroups with the subgroup_id builtin";
  if (!subgroupMatrixConfig(device)) {
    const offered = device.subgroupMatrixConfigs.map((c) =>
      `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`
    );
    return `the adapter lists no f16→f32 subgroup-matrix configuration (it lists ${
      offered.join(", ") || "none"
    })`;
  }
  return null;
}

/** Whether {@link subgroupMatrixMatmul} can run on `device`. */
export function subgroupMatrixAvailable(device: Device): boolean {
  return subgroupMatrixUnavailableReason(device) === null;
}

/**
 * The kernel spec for `config` on a device with `subgroupMaxSize` and the
 * given workgroup limits: an 8×8-fragment tile (128×128 for 16×16
 * fragments; narrower along M or N when `problem` is smaller), two fragment
 * depths per K step, and up to 4 whole max-size subgroups (a power of two,
 * within the invocation limit), each owning a 4×4 block of fragments: 0.5
 * fragment loads per multiply-accumulate, the layout of a CUTLASS 128×128
 * tile with four 64×64 warps. Shrinks depth, then fragments, to fit the
 * workgroup memory.
 */
export function subgroupMatrixSpec(
  config: Pick<SubgroupMatrixConfig, "M" | "N" | "K">,
  device: Pick<Device, "subgroupMaxSize" | "limits">,
  operands: Pick<SubgroupMatrixSpec, "aType" | "bType" | "transA" | "transB">,
  problem?: { M: number; N: number },
): SubgroupMatrixSpec {
  const sgMax = Math.max(1, device.subgroupMaxSize);
  const maxThreads = Math.min(device.limits.maxComputeInvocationsPerWorkgroup, 4 * sgMax);
  const subgroups = 2 ** Math.floor(Math.log2(Math.max(1, Math.floor(maxThreads / sgMax))));
  // Fragments along a dimension: 8, or the fewest (a power of two) covering a smaller problem.
  const along = (size: number | undefined, fragment: number) =>
    size === undefined ? 8 : Math.min(8, 2 ** Math.ceil(Math.log2(Math.max(1, size / fragment))));
  let fm = along(problem?.M, config.M), fn = along(problem?.N, config.N), ks = 2;
  const spec = (): SubgroupMatrixSpec => ({
    m0: config.M,
    n0: config.N,
    k0: config.K,
    fm,
    fn,
    ks,
    threads: subgroups * sgMax,
    minSubgroups: subgroups,
    ...operands,
  });
  while (
    subgroupMatrixWorkgroupBytes(spec()) > device.limits.maxComputeWorkgroupStorageSize &&
    (fm > 1 || fn > 1 || ks > 1)
  ) {
    if (ks > 1) ks = 1;
    else if (fm >= fn) fm /= 2;
    else fn /= 2;
  }
  return spec();
}

/**
 * C = op(A)·op(B) on subgroup matrices, f32 result `[..., M, N]` (no
 * autograd: the matmul op routes here). Operands may be f16 or f32 (f32 is
 * rounded to f16 while staged); batch dims must match unless one operand is
 * 2-D (broadcast); each operand and C must fit one storage binding.
 *
 * @throws {Error} with the reason when the device cannot run it
 *   ({@link subgroupMatrixUnavailableReason}) or the shapes do not fit.
 */
export function subgroupMatrixMatmul(
  a: Tensor,
  b: Tensor,
  opts: SubgroupMatrixMatmulOptions = {},
): Tensor {
  const rt = getRuntime();
  const why = subgroupMatrixUnavailableReason(rt.device);
  if (why) throw new Error(`subgroupMatrixMatmul: ${why}`);
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`subgroupMatrixMatmul: operands must be ≥ 2-D, got ${a} and ${b}`);
  }
  for (const t of [a, b]) {
    if (t.dtype !== "f16" && t.dtype !== "f32") {
      throw new Error(`subgroupMatrixMatmul: operands must be f16 or f32, got ${t}`);
    }
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (K !== Kb) {
    throw new Error(`subgroupMatrixMatmul: inner dims differ: ${a} × ${b}`);
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  if (aBatch.length && bBatch.length && aBatch.join() !== bBatch.join()) {
    throw new Error(
      `subgroupMatrixMatmul: batch dims [${aBatch}] and [${bBatch}] differ (only a 2-D operand broadcasts)`,
    );
  }
  const batchShape = aBatch.length ? aBatch : bBatch;
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const out = Tensor.empty([...batchShape, M, N], "f32", "matmul");
  if (M * N * batch === 0) return out;
  if (K === 0) throw new Error("subgroupMatrixMatmul: K = 0 is not supported");
  const limit = maxBindingBytes();
  for (const t of [a, b, out]) {
    if (t.byteLength > limit) {
      throw new Error(`subgroupMatrixMatmul: ${t} exceeds one storage binding (${limit} bytes)`);
    }
  }
  if (batch > rt.device.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(`subgroupMatrixMatmul: batch ${batch} exceeds the dispatch limit`);
  }
  const spec = subgroupMatrixSpec(subgroupMatrixConfig(rt.device)!, rt.device, {
    aType: a.dtype as "f16" | "f32",
    bType: b.dtype as "f16" | "f32",
    transA,
    transB,
  }, { M, N });
  rt.launch(
    SUBGROUP_MATRIX_MATMUL,
    spec,
    { C: out.buffer, A: a.buffer, B: b.buffer },
    {
      M,
      N,
      K,
      lda: transA ? M : K,
      ldb: transB ? K : N,
      ldc: N,
      aBatchStride: aBatch.length ? M * K : 0,
      bBatchStride: bBatch.length ? K * N : 0,
      cBatchStride: M * N,
    },
    [Math.ceil(N / (spec.n0 * spec.fn)), Math.ceil(M / (spec.m0 * spec.fm)), batch],
  );
  return out;
}
