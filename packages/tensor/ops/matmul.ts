/**
 * Matrix multiplication: tiled, register-blocked WGSL with workgroup-memory
 * tiles; f32 or f16 operands (each independently), f32 accumulation, f32
 * output; batched with broadcast of a 2-D operand; transpose flags for either
 * side (no transposed copies: `linear` reads the HF `[out, in]` weight
 * directly); optional fused bias and silu/gelu epilogue.
 *
 * A 2-D right operand larger than one storage binding is split: along its
 * rows when transposed (`linear`: rows are outputs) or along the reduction
 * dimension otherwise (accumulating into C). The left operand and the output
 * must each fit one binding.
 *
 * Kernels come from the generated family in `matmul_kernels.ts` (tile sizes,
 * per-thread register blocks, buffering, padding); the variant for a call is
 * the route of its shape (`matmul_route.ts`: the tuning table's choice for
 * its shape class, `matmul_table.ts`, and a split-K factor, measured or
 * chosen from the counts of workgroups per wave); a split product writes
 * partial sums to a pooled scratch that a second pass sums in fixed order
 * (`matmul_splitk.ts`). Then
 * vec4 global loads/stores are used per operand wherever its contiguous
 * extent, leading dimension and offsets are multiples of 4 (scalar loads
 * otherwise, so odd shapes and split bindings keep working).
 *
 * @module
 */

import { isGradEnabled } from "../autograd.ts";
import { bytesPerElement } from "../dtype.ts";
import { TensorTooLargeError } from "../pool.ts";
import { defineOp } from "../registry.ts";
import { getRuntime, maxBindingBytes } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import {
  type Activation,
  MATMUL_KERNEL,
  type MatmulKernelSpec,
  type MatmulTiles,
  type MatmulVariant,
  variantName,
  variantProblem,
} from "./matmul_kernels.ts";
import { splitPlan } from "./matmul_counts.ts";
import { routeMatmul } from "./matmul_route.ts";
import { activeMatmulTuning, subgroupMatrixRouted } from "./matmul_table.ts";
import { launchSplitReduce } from "./matmul_splitk.ts";
import { gelu, mapRaw, silu } from "./elementwise.ts";
import { subgroupMatrixAvailable, subgroupMatrixMatmul } from "./matmul_subgroup_matrix.ts";
import { reduceRaw, sumToShape } from "./reduce.ts";

export type { Activation, MatmulTiles, MatmulVariant } from "./matmul_kernels.ts";

/** The tiles of the small variant (64×64×16, 4×4 per thread, 256 threads). */
export const DEFAULT_TILES: MatmulTiles = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };

let override: { variant: MatmulVariant; splitK: number } | undefined;

/**
 * Forces one variant (and split-K factor, default 1: no split) for every
 * matmul from now on (kernel lab, tests); `undefined` returns to routing by
 * the tuning table ({@link useMatmulTuning}).
 */
export function setMatmulVariant(v: MatmulVariant | undefined, splitK = 1): void {
  if (v) {
    const problem = variantProblem(v);
    if (problem) throw new Error(`matmul variant ${variantName(v)}: ${problem}`);
    if (!Number.isInteger(splitK) || splitK < 1) {
      throw new Error(`matmul: split-K factor ${splitK} is not a positive integer`);
    }
  }
  override = v ? { variant: { ...v }, splitK } : undefined;
}

/**
 * Sets the tiles used from now on (vec4 loads where aligned, single
 * buffering, no padding); see {@link setMatmulVariant} for the other knobs.
 */
export function setMatmulTiles(t: MatmulTiles): void {
  setMatmulVariant({ ...t, vec4: true, buffering: "single", pad: 0 });
}

let trace: MatmulKernelSpec[] | undefined;

/**
 * Runs `fn` and returns the kernel specs of every matmul product launch it
 * recorded (which variant, which operands went through vec4 loads, and
 * `splits` > 1 when the product was split along K and reduced by a second
 * pass).
 */
export function traceMatmulKernels<T>(fn: () => T): { result: T; kernels: MatmulKernelSpec[] } {
  const outer = trace;
  const kernels: MatmulKernelSpec[] = [];
  trace = kernels;
  try {
    return { result: fn(), kernels };
  } finally {
    trace = outer;
    outer?.push(...kernels);
  }
}

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` is stored [..., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: `b` is stored [..., N, K] (the HF linear weight layout). */
  transB?: boolean;
}

interface Plan {
  M: number;
  N: number;
  K: number;
  batch: number;
  batchShape: number[];
  aBS: number;
  bBS: number;
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan {
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`matmul: operands must be ≥ 2-D, got ${a} and ${b}`);
  }
  if (!["f32", "f16"].includes(a.dtype) || !["f32", "f16"].includes(b.dtype)) {
    throw new Error(`matmul: operands must be f32 or f16, got ${a} and ${b}`);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [M, Ka] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (Ka !== Kb) {
    throw new Error(
      `matmul: inner dims differ: ${a} (transA=${transA}) × ${b} (transB=${transB})`,
    );
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const batchShape = aBatch.length ? aBatch : bBatch;
  if (aBatch.length && bBatch.length && aBatch.join() !== bBatch.join()) {
    throw new Error(
      `matmul: batch dims [${aBatch}] and [${bBatch}] differ (only a 2-D operand broadcasts)`,
    );
  }
  const batch = batchShape.reduce((x, y) => x * y, 1);
  return {
    M,
    N,
    K: Ka,
    batch,
    batchShape,
    aBS: aBatch.length ? M * Ka : 0,
    bBS: bBatch.length ? Ka * N : 0,
  };
}

function align(rowBytes: number, alignment: number): number {
  const g = (x: number, y: number): number => (y === 0 ? x : g(y, x % y));
  return alignment / g(rowBytes, alignment);
}

/**
 * Launches C = op(A)·op(B) (+ bias, activation) without autograd (internal).
 * `variant` (with `splitK`, default 1) forces a route (tuning, tests);
 * otherwise the one forced by {@link setMatmulVariant}, else routing by the
 * tuning table and the counts (`matmul_route.ts`).
 */
export function matmulRaw(
  a: Tensor,
  b: Tensor,
  o: MatmulOptions & {
    bias?: Tensor;
    activation?: Activation;
    variant?: MatmulVariant;
    splitK?: number;
  } = {},
): Tensor {
  const transA = o.transA ?? false, transB = o.transB ?? false;
  const p = plan(a, b, transA, transB);
  const act = o.activation ?? "none";
  const out = Tensor.empty([...p.batchShape, p.M, p.N], "f32", "matmul");
  if (p.M * p.N * p.batch === 0) return out;
  if (p.K === 0) throw new Error("matmul: K = 0 is not supported");
  const limit = maxBindingBytes();
  for (const [t, name] of [[a, "left operand"], [out, "output"]] as const) {
    if (t.byteLength > limit) {
      throw new TensorTooLargeError(
        `matmul ${name} ${t}`,
        t.byteLength,
        limit,
        "storage binding size",
      );
    }
  }
  if (p.batch > 65535) throw new Error(`matmul: batch ${p.batch} > 65535`);
  const rt = getRuntime();
  // f16×f16 on the matrix units where Dawn offers them (exact f16 products, f32 accumulation).
  if (
    a.dtype === "f16" && b.dtype === "f16" && !o.bias && act === "none" && !o.variant &&
    !override && b.byteLength <= limit && subgroupMatrixAvailable(rt.device) &&
    subgroupMatrixRouted(activeMatmulTuning(rt.device.isCpuAdapter), {
      M: p.M,
      N: p.N,
      K: p.K,
      batch: p.batch,
      transA,
      transB,
      aType: "f16",
      bType: "f16",
    })
  ) {
    out.dispose();
    return subgroupMatrixMatmul(a, b, { transA, transB });
  }
  const lda = transA ? p.M : p.K;
  const route = o.variant ? { variant: o.variant, splitK: o.splitK ?? 1 } : override ??
    routeMatmul({
      M: p.M,
      N: p.N,
      K: p.K,
      batch: p.batch,
      transA,
      transB,
      aType: a.dtype as "f32" | "f16",
      bType: b.dtype as "f32" | "f16",
    }, rt.device);
  const variant = route.variant;
  const quad = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  const launch = (
    bBinding: GPUBufferBinding,
    rows: {
      aOff: number;
      cOff: number;
      n: number;
      k: number;
      ldb: number;
      acc: boolean;
      bias: boolean;
    },
  ) => {
    const bias = rows.bias && o.bias !== undefined;
    const activation = rows.acc ? "none" : act;
    // K ranges of whole K tiles; the scratch of partial sums must fit one
    // binding and batch × splits one dispatch dimension.
    const slab = p.batch * p.M * rows.n * 4;
    const fit = Math.max(1, Math.min(Math.floor(limit / slab), Math.floor(65535 / p.batch)));
    const { kChunk, splits } = splitPlan(rows.k, Math.min(route.splitK, fit), variant.bk);
    // vec4 access needs every vec4 wholly inside or outside the operand:
    // contiguous extent, leading dimension and offsets all multiples of 4.
    const vecC = variant.vec4 && quad(rows.n, ...(splits > 1 ? [] : [p.N, rows.cOff]));
    const spec: MatmulKernelSpec = {
      variant,
      aType: a.dtype as "f32" | "f16",
      bType: b.dtype as "f32" | "f16",
      transA,
      transB,
      vecA: variant.vec4 && quad(lda, rows.aOff, p.aBS, transA ? p.M : rows.k),
      vecB: variant.vec4 && quad(rows.ldb, p.bBS, transB ? rows.k : rows.n),
      vecC,
      bias: splits > 1 ? false : bias,
      activation: splits > 1 ? "none" : activation,
      ...(splits > 1 ? { splits } : {}),
    };
    trace?.push(spec);
    // Split: partial sums go to dense slabs [splits, batch, M, n] of a pooled scratch.
    const scratch = splits > 1 ? Tensor.empty([splits, slab / 4], "f32", "matmul split-K") : null;
    rt.launch(
      MATMUL_KERNEL,
      spec,
      {
        C: scratch ? scratch.buffer : out.buffer,
        A: a.buffer,
        B: bBinding,
        BIAS: spec.bias ? o.bias!.buffer : undefined,
      },
      {
        M: p.M,
        N: rows.n,
        K: rows.k,
        aOffset: rows.aOff,
        aBatchStride: p.aBS,
        bOffset: 0,
        bBatchStride: p.bBS,
        cOffset: scratch ? 0 : rows.cOff,
        cBatchStride: p.M * (scratch ? rows.n : p.N),
        lda,
        ldb: rows.ldb,
        ldc: scratch ? rows.n : p.N,
        accumulate: !scratch && rows.acc ? 1 : 0,
        biasBase: rows.cOff % p.N,
        kChunk,
        splits,
        cSplitStride: slab / 4,
      },
      [Math.ceil(rows.n / variant.bn), Math.ceil(p.M / variant.bm), p.batch * splits],
    );
    if (scratch) {
      launchSplitReduce({
        out: out.buffer,
        scratch: scratch.buffer,
        bias: bias ? o.bias!.buffer : undefined,
        rows: p.batch * p.M,
        cols: rows.n,
        splits,
        ldc: p.N,
        cOffset: rows.cOff,
        accumulate: rows.acc,
        biasBase: rows.cOff % p.N,
        activation,
      });
      scratch.dispose();
    }
  };
  if (b.byteLength <= limit) {
    launch({ buffer: b.buffer }, {
      aOff: 0,
      cOff: 0,
      n: p.N,
      k: p.K,
      ldb: transB ? p.K : p.N,
      acc: false,
      bias: true,
    });
    return out;
  }
  // Split the 2-D right operand into row ranges that each fit one binding.
  if (p.bBS !== 0) {
    throw new TensorTooLargeError(
      `matmul batched right operand ${b}`,
      b.byteLength,
      limit,
      "storage binding size",
    );
  }
  const es = bytesPerElement(b.dtype);
  const rowLen = b.shape[1]!;
  const rowBytes = rowLen * es;
  const step = align(rowBytes, rt.device.limits.minStorageBufferOffsetAlignment);
  const rowsPerChunk = Math.floor(Math.floor(limit / rowBytes) / step) * step;
  if (rowsPerChunk === 0) {
    throw new TensorTooLargeError(
      `matmul: one row of ${b}`,
      rowBytes * step,
      limit,
      "storage binding size",
    );
  }
  if (!transB && act !== "none") {
    throw new Error("matmul: activation epilogue with a split K is not supported");
  }
  const totalRows = b.shape[0]!;
  for (let r0 = 0; r0 < totalRows; r0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, totalRows - r0);
    const size = Math.min(Math.ceil(rows * rowBytes / 4) * 4, b.buffer.size - r0 * rowBytes);
    const binding = { buffer: b.buffer, offset: r0 * rowBytes, size };
    if (transB) {
      // Rows of B are output columns r0..r0+rows.
      launch(binding, { aOff: 0, cOff: r0, n: rows, k: p.K, ldb: p.K, acc: false, bias: true });
    } else {
      // Rows of B are reduction indices: accumulate partial products into C.
      launch(binding, {
        aOff: transA ? r0 * lda : r0,
        cOff: 0,
        n: p.N,
        k: rows,
        ldb: p.N,
        acc: r0 > 0,
        bias: r0 === 0,
      });
    }
  }
  return out;
}

function asDtype(g: Tensor, dtype: string): Tensor {
  return dtype === "f16" ? mapRaw("cast", "a", [g], { dtype: "f16" }) : g;
}

const matmulOp = defineOp<{ transA: boolean; transB: boolean }>({
  name: "matmul",
  forward: ([a, b], o) => ({ output: matmulRaw(a!, b!, o), saved: [a!, b!] }),
  backward: (dy, { saved, inputs, attrs }) => {
    const [a, b] = saved as [Tensor, Tensor];
    const { transA, transB } = attrs;
    let da: Tensor | null = null, db: Tensor | null = null;
    if (inputs[0]!.requiresGrad) {
      const g = transA
        ? matmulRaw(b, dy, { transA: transB, transB: true })
        : matmulRaw(dy, b, { transB: !transB });
      da = asDtype(sumToShape(g, a.shape), a.dtype);
    }
    if (inputs[1]!.requiresGrad) {
      if (b.rank === 2 && a.rank > 2 && !transA) {
        // Fold the batch into rows: one [K, N] product instead of a batched one plus a sum.
        const rows = a.size / a.shape[a.rank - 1]!;
        const a2 = a.shareAs([rows, a.shape[a.rank - 1]!]);
        const dy2 = dy.shareAs([rows, dy.shape[dy.rank - 1]!]);
        db = transB ? matmulRaw(dy2, a2, { transA: true }) : matmulRaw(a2, dy2, { transA: true });
      } else {
        const g = transB
          ? matmulRaw(dy, a, { transA: true, transB: transA })
          : matmulRaw(a, dy, { transA: !transA });
        db = sumToShape(g, b.shape);
      }
      db = asDtype(db, b.dtype);
    }
    return [da, db];
  },
});

/**
 * Batched matrix product op(A)·op(B) with autograd. Shapes `[..., M, K]` ×
 * `[..., K, N]` → `[..., M, N]` (f32); batch dims must match unless one
 * operand is 2-D (broadcast). `transA`/`transB` read the operand transposed
 * in place.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  return matmulOp([a, b], { transA: options.transA ?? false, transB: options.transB ?? false });
}

const linearOp = defineOp<{ activation: Activation; halfGradient: boolean }>({
  name: "linear",
  forward: (inputs, { activation }) => {
    const [x, w, bias] = inputs as [Tensor, Tensor, Tensor | undefined];
    const inDim = x.shape[x.rank - 1]!;
    if (w.rank !== 2 || w.shape[1] !== inDim) {
      throw new Error(`linear: weight ${w} does not take ${x}`);
    }
    if (bias && (bias.rank !== 1 || bias.shape[0] !== w.shape[0] || bias.dtype !== "f32")) {
      throw new Error(`linear: bias ${bias} must be f32 [${w.shape[0]}]`);
    }
    const x2 = x.shareAs([x.size / inDim, inDim]);
    const y = matmulRaw(x2, w, { transB: true, bias, activation });
    return { output: y.shareAs([...x.shape.slice(0, -1), w.shape[0]!]), saved: [x2, w] };
  },
  backward: (dy, { saved, inputs, attrs }) => {
    if (attrs.activation !== "none") throw new Error("linear: fused activation is inference-only");
    const [x2, w] = saved as [Tensor, Tensor];
    const dy2 = dy.shareAs([x2.shape[0]!, w.shape[0]!]);
    // Autocast: the incoming gradient as an f16 operand too, so dx and dW are f16×f16 products
    // (the matrix units where the device has them), as torch.autocast's f16 backward GEMMs.
    const g = attrs.halfGradient && dy2.dtype !== "f16" ? asDtype(dy2, "f16") : dy2;
    const dx = inputs[0]!.requiresGrad
      ? asDtype(matmulRaw(g, w).shareAs(inputs[0]!.shape), inputs[0]!.dtype)
      : null;
    const dw = inputs[1]!.requiresGrad
      ? asDtype(matmulRaw(g, x2, { transA: true }), w.dtype)
      : null;
    const db = inputs[2]?.requiresGrad ? reduceRaw(dy2, "sum", 0, false) : null;
    if (g !== dy2) g.dispose();
    return [dx, dw, db];
  },
});

/** Options of {@link linear}. */
export interface LinearOptions {
  /**
   * Round the incoming gradient to f16 before the backward products, so dx
   * and dW are f16×f16 (mixed precision under loss scaling, as autocast's f16
   * GEMMs; `CausalLM.autocast` sets it). Default: the gradient keeps f32.
   */
  halfGradient?: boolean;
}

/**
 * y = x·Wᵀ (+ bias) with the weight in HF layout `[out, in]` (no transposed
 * copy), x `[..., in]` → y `[..., out]` (f32). An activation is fused into
 * the kernel when no gradient is recorded; otherwise it runs as its own op.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  activation: Activation = "none",
  options: LinearOptions = {},
): Tensor {
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const halfGradient = options.halfGradient ?? false;
  const recording = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  if (activation === "none" || !recording) return linearOp(inputs, { activation, halfGradient });
  const y = linearOp(inputs, { activation: "none", halfGradient });
  const out = activation === "silu" ? silu(y) : gelu(y);
  y.dispose();
  return out;
}
