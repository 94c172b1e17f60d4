/**
 * Lab families of the memory-bound kernels: row kernels (RMSNorm, softmax,
 * cross-entropy, L2 normalisation), element maps, gathers and scatters,
 * reductions, RoPE, dropout, NF4 dequantisation, the optimizer and gradient
 * clipping, and the attention row scores. Their design counts are the bytes
 * they move: the roofline of a streaming kernel is bandwidth. Each case runs
 * the op forward (and backward, for backward kernels) through autograd;
 * GPU timestamps then count only the named kernel's dispatches.
 *
 * Their float64 references and tests are the ops' tests (`ops/nn_test.ts`,
 * `ops/misc_test.ts`, `ops/shape_reduce_test.ts`, `ops/elementwise_test.ts`,
 * `optim/optim_test.ts`, `attention/row_scores_test.ts`).
 *
 * @module
 */

import { backward, noGrad, variable, zeroGrad } from "../../autograd.ts";
import { causalMask } from "../../attention/mask_metadata.ts";
import { AttentionMask } from "../../attention/attention_mask.ts";
import type { Device } from "../../device.ts";
import { quantizeNf4Cpu } from "../../nf4.ts";
import { dequantizeNf4, nf4Tensor } from "../../nf4.ts";
import { attentionScoresForRows } from "../../ops/attention.ts";
import { crossEntropy } from "../../ops/cross_entropy.ts";
import { dropout } from "../../ops/dropout.ts";
import { add } from "../../ops/elementwise.ts";
import { embedding, indexSelect } from "../../ops/gather.ts";
import { l2Normalize } from "../../ops/l2norm.ts";
import { max, sum } from "../../ops/reduce.ts";
import { rmsNorm } from "../../ops/rmsnorm.ts";
import { rope, ropeTable } from "../../ops/rope.ts";
import { softmax } from "../../ops/softmax.ts";
import { AdamW } from "../../optim/adamw.ts";
import { clipGradNorm } from "../../optim/clip.ts";
import { randn, randnArray } from "../../random.ts";
import { keep, tidy } from "../../scope.ts";
import { full, Tensor } from "../../tensor.ts";
import type { KernelCounts } from "../counts.ts";
import {
  type LabCase,
  type LabFamily,
  type LabRun,
  type LabScale,
  registerLabFamily,
  streamingCounts,
} from "../family.ts";

const ROW_THREADS = 256, ROW_BYTES = 1024;

/** A case built from a kernel name, problem, counts and a recorder factory. */
function labCase(
  kernel: string,
  problem: string,
  counts: KernelCounts,
  prepare: () => LabRun,
): LabCase {
  return { kernel, variant: "default", problem, counts, prepare };
}

/** Leaves that require grad, freed by the run's dispose. */
function leaves(...tensors: Tensor[]): Tensor[] {
  return tensors.map((t) => variable(t));
}

/** Records forward (and, when `grad`, backward with a kept upstream gradient). */
function opRun(inputs: Tensor[], forward: (xs: Tensor[]) => Tensor, grad: boolean): LabRun {
  const upstream = grad ? noGrad(() => forward(inputs)) : undefined;
  const dy = upstream ? keep(randn(upstream.shape, { seed: 99 })) : undefined;
  upstream?.dispose();
  return {
    record: () =>
      tidy(() => {
        if (!grad) return noGrad(() => void forward(inputs));
        zeroGrad(inputs);
        backward(forward(inputs), dy);
      }),
    dispose: () => {
      zeroGrad(inputs);
      for (const t of [...inputs, ...(dy ? [dy] : [])]) t.dispose();
    },
  };
}

/** Row-kernel counts: `rows` workgroups of 256 threads, a 1 KiB reduction buffer. */
function rowCounts(
  flops: number,
  readBytes: number,
  writeBytes: number,
  rows: number,
): KernelCounts {
  return streamingCounts({
    flops,
    readBytes,
    writeBytes,
    workgroups: rows,
    threads: ROW_THREADS,
    workgroupBytes: ROW_BYTES,
  });
}

/** Flat-kernel counts: one thread per element, `threads` per workgroup. */
function flatCounts(
  flops: number,
  readBytes: number,
  writeBytes: number,
  items: number,
  threads = 256,
): KernelCounts {
  return streamingCounts({
    flops,
    readBytes,
    writeBytes,
    workgroups: Math.ceil(items / threads),
    threads,
  });
}

function rowCases(scale: LabScale): LabCase[] {
  const [R, D] = scale === "gpu" ? [8192, 4096] : [64, 256];
  const [N, V] = scale === "gpu" ? [8192, 32768] : [32, 1000];
  const x = () => randn([R, D], { seed: 3 });
  const rd = `${R}×${D}`, nv = `${N}×${V}`;
  const e = R * D * 4;
  const targets = () =>
    Tensor.fromArray(Array.from({ length: N }, (_, i) => (i * 7919) % V), [N], "i32");
  const ce = (grad: boolean) => () => {
    const logits = leaves(randn([N, V], { seed: 5 }));
    const t = keep(targets());
    const run = opRun(logits, ([l]) => crossEntropy(l!, t), grad);
    return { record: run.record, dispose: () => (run.dispose(), t.dispose()) };
  };
  return [
    labCase(
      "rms_norm",
      rd,
      rowCounts(4 * R * D, e + D * 4, e + R * 4, R),
      () =>
        opRun(
          [x(), randn([D], { seed: 4 })].map((t) => keep(t)),
          ([a, w]) => rmsNorm(a!, w!),
          false,
        ),
    ),
    labCase(
      "rms_norm-backward-x",
      rd,
      rowCounts(6 * R * D, 2 * e + D * 4 + R * 4, e, R),
      () => opRun(leaves(x(), randn([D], { seed: 4 })), ([a, w]) => rmsNorm(a!, w!), true),
    ),
    labCase(
      "rms_norm-backward-w",
      rd,
      streamingCounts({
        flops: 3 * R * D,
        readBytes: 2 * e + R * 4,
        writeBytes: D * 4,
        workgroups: Math.ceil(D / 64),
        threads: 64,
      }),
      () => opRun(leaves(x(), randn([D], { seed: 4 })), ([a, w]) => rmsNorm(a!, w!), true),
    ),
    labCase(
      "softmax",
      rd,
      rowCounts(4 * R * D, e, e, R),
      () => opRun([keep(x())], ([a]) => softmax(a!), false),
    ),
    labCase(
      "softmax-backward",
      rd,
      rowCounts(4 * R * D, 2 * e, e, R),
      () => opRun(leaves(x()), ([a]) => softmax(a!), true),
    ),
    labCase(
      "l2_normalize",
      rd,
      rowCounts(3 * R * D, e, e, R),
      () => opRun([keep(x())], ([a]) => l2Normalize(a!), false),
    ),
    labCase("cross_entropy", nv, rowCounts(3 * N * V, N * V * 4 + N * 4, N * 8, N), ce(false)),
    labCase(
      "cross_entropy-reduce",
      nv,
      streamingCounts({
        flops: 2 * N,
        readBytes: N * 8,
        writeBytes: 8,
        workgroups: 1,
        threads: 256,
        workgroupBytes: ROW_BYTES,
      }),
      ce(false),
    ),
    labCase(
      "cross_entropy-backward",
      nv,
      rowCounts(4 * N * V, N * V * 4 + N * 12, N * V * 4, N),
      ce(true),
    ),
  ];
}

function elementCases(scale: LabScale, device: Device): LabCase[] {
  const n = scale === "gpu" ? 1 << 26 : 1 << 14;
  const e = n * 4;
  const vec = () => randn([n], { seed: 1 });
  const [B, T, H, D] = scale === "gpu" ? [8, 1024, 32, 128] : [2, 16, 4, 16];
  const ropeItems = B * T * H * (D / 2);
  const [V, Dm, ids] = scale === "gpu" ? [32768, 4096, 8192] : [512, 64, 128];
  const idTensor = () =>
    Tensor.fromArray(Array.from({ length: ids }, (_, i) => (i * 131) % V), [ids], "i32");
  const embed = (grad: boolean) => () => {
    const i = keep(idTensor());
    const run = opRun(
      grad ? leaves(randn([V, Dm], { seed: 2 })) : [keep(randn([V, Dm], { seed: 2 }))],
      ([t]) => embedding(t!, i),
      grad,
    );
    return { record: run.record, dispose: () => (run.dispose(), i.dispose()) };
  };
  const [Rs, Ns, K] = scale === "gpu" ? [8192, 4096, 64] : [64, 256, 16];
  const select = (grad: boolean) => () => {
    const idx = keep(
      Tensor.fromArray(Array.from({ length: K }, (_, i) => (i * 7) % Ns), [K], "i32"),
    );
    const xs = grad ? leaves(randn([Rs, Ns], { seed: 3 })) : [keep(randn([Rs, Ns], { seed: 3 }))];
    const run = opRun(xs, ([x]) => indexSelect(x!, -1, idx), grad);
    return { record: run.record, dispose: () => (run.dispose(), idx.dispose()) };
  };
  const [Ro, Lo] = scale === "gpu" ? [8192, 4096] : [64, 256];
  const cases: LabCase[] = [
    labCase(
      "map",
      `add ${n}`,
      flatCounts(n, 2 * e, e, n),
      () => opRun([keep(vec()), keep(vec())], ([a, b]) => add(a!, b!), false),
    ),
    labCase(
      "fill",
      `${n}`,
      flatCounts(0, 0, e, n),
      () => ({ record: () => tidy(() => void full([n], 1)), dispose: () => {} }),
    ),
    labCase(
      "dropout",
      `${n} p=0.1`,
      flatCounts(n, e, e, n),
      () => opRun([keep(vec())], ([a]) => dropout(a!, 0.1, 7), false),
    ),
    labCase(
      "rope",
      `${B}×${T}×${H}×${D}`,
      flatCounts(
        6 * ropeItems,
        2 * ropeItems * 4 + B * T * 4 + T * D * 4,
        2 * ropeItems * 4,
        ropeItems,
        64,
      ),
      () => {
        const pos = keep(
          Tensor.fromArray(Array.from({ length: B * T }, (_, i) => i % T), [B, T], "i32"),
        );
        const table = keep(ropeTable(T, D, 10000));
        const run = opRun(
          [keep(randn([B, T, H, D], { seed: 1 }))],
          ([x]) => rope(x!, pos, table),
          false,
        );
        return {
          record: run.record,
          dispose: () => (run.dispose(), pos.dispose(), table.dispose()),
        };
      },
    ),
    labCase(
      "reduce",
      `sum ${Ro}×${Lo} over rows`,
      streamingCounts({
        flops: Ro * Lo,
        readBytes: Ro * Lo * 4,
        writeBytes: Lo * 4,
        workgroups: Lo,
        threads: 256,
        workgroupBytes: ROW_BYTES,
      }),
      () => opRun([keep(randn([Ro, Lo], { seed: 2 }))], ([x]) => sum(x!, 0), false),
    ),
    labCase(
      "max-backward",
      `max ${Ro}×${Lo} over rows`,
      flatCounts(Ro * Lo, 2 * Ro * Lo * 4 + 2 * Lo * 4, Ro * Lo * 4, Lo, 64),
      () => opRun(leaves(randn([Ro, Lo], { seed: 2 })), ([x]) => max(x!, 0), true),
    ),
    labCase(
      "embedding",
      `${ids} ids of ${V}×${Dm}`,
      flatCounts(0, ids * Dm * 4 + ids * 4, ids * Dm * 4, ids * Dm),
      embed(false),
    ),
    labCase(
      "embedding-backward-count",
      `${ids} ids of ${V}`,
      flatCounts(0, ids * 4, V * 4, ids),
      embed(true),
    ),
    labCase(
      "embedding-backward-scan",
      `${V} rows`,
      streamingCounts({
        flops: 2 * V,
        readBytes: 2 * V * 4,
        writeBytes: V * 4,
        workgroups: 1,
        threads: 256,
        workgroupBytes: ROW_BYTES,
      }),
      embed(true),
    ),
    labCase(
      "embedding-backward-place",
      `${ids} ids`,
      streamingCounts({
        flops: ids * ids / 2,
        readBytes: ids * 4 + V * 4,
        writeBytes: ids * 4,
        globalReadBytes: (ids * ids / 2) * 4,
        workgroups: Math.ceil(ids / 256),
        threads: 256,
      }),
      embed(true),
    ),
    labCase(
      "embedding-backward-accumulate",
      `${V}×${Dm}`,
      streamingCounts({
        flops: ids * Dm,
        readBytes: ids * Dm * 4 + ids * 4 + 2 * V * 4,
        writeBytes: V * Dm * 4,
        workgroups: V,
        threads: 64,
      }),
      embed(true),
    ),
    labCase(
      "index_select_last",
      `${Rs}×${Ns} pick ${K}`,
      flatCounts(0, Rs * K * 4 + K * 4, Rs * K * 4, Rs * K),
      select(false),
    ),
    labCase(
      "index_select_last-backward",
      `${Rs}×${Ns} pick ${K}`,
      flatCounts(Rs * Ns * K, Rs * K * 4 + K * 4, Rs * Ns * 4, Rs * Ns),
      select(true),
    ),
    labCase(
      "dequantize_nf4",
      `${Ro}×${Lo}`,
      flatCounts(Ro * Lo, Ro * Lo / 2 + Ro * Lo / 16, Ro * Lo * 4, Ro * Lo),
      () => {
        const w = keep(nf4Tensor(quantizeNf4Cpu(randnArray(Ro * Lo, 4), 64), [Ro, Lo]));
        return { record: () => tidy(() => void dequantizeNf4(w)), dispose: () => w.dispose() };
      },
    ),
  ];
  return cases.filter(() => device !== undefined);
}

function optimizerCases(scale: LabScale): LabCase[] {
  const sizes = scale === "gpu" ? [4096 * 4096, 4096 * 14336, 32768 * 4096] : [64 * 64, 128 * 64];
  const total = sizes.reduce((a, b) => a + b, 0);
  const slots = sizes.map((s) => Math.max(1, Math.min(64, Math.ceil(s / (256 * 16)))));
  const problem = `${sizes.length} tensors, ${(total / 1e6).toFixed(1)} M values`;
  const params = () => {
    const ps = sizes.map((s, i) => variable(randn([s], { seed: i })));
    for (const [i, p] of ps.entries()) p.grad = keep(randn([sizes[i]!], { seed: 10 + i }));
    return ps;
  };
  const adam = () => {
    const ps = params();
    const opt = new AdamW(ps);
    return {
      record: () => opt.step(1e-4),
      dispose: () => (opt.dispose(), zeroGrad(ps), ps.forEach((p) => p.dispose())),
    };
  };
  const clip = () => {
    const ps = params();
    return {
      record: () => clipGradNorm(ps, 1.0).dispose(),
      dispose: () => (zeroGrad(ps), ps.forEach((p) => p.dispose())),
    };
  };
  const slotCount = slots.reduce((a, b) => a + b, 0);
  return [
    labCase(
      "adamw",
      problem,
      streamingCounts({
        flops: 16 * total,
        readBytes: 16 * total,
        writeBytes: 12 * total,
        workgroups: sizes.reduce((n, s) => n + Math.ceil(s / 256), 0),
        threads: 256,
      }),
      adam,
    ),
    labCase(
      "clip-partial",
      problem,
      streamingCounts({
        flops: 2 * total,
        readBytes: 4 * total,
        writeBytes: 8 * slotCount,
        workgroups: slotCount,
        threads: 256,
        workgroupBytes: ROW_BYTES,
      }),
      clip,
    ),
    labCase(
      "clip-total",
      problem,
      streamingCounts({
        flops: slotCount,
        readBytes: 8 * slotCount,
        writeBytes: 12,
        workgroups: 1,
        threads: 256,
        workgroupBytes: ROW_BYTES,
      }),
      clip,
    ),
    labCase("clip-scale", problem, flatCounts(total, 4 * total, 4 * total, total), clip),
  ];
}

function rowScoreCases(scale: LabScale): LabCase[] {
  const [H, D, T, R] = scale === "gpu" ? [32, 128, 4864, 30] : [2, 16, 64, 4];
  const rows = [Array.from({ length: R }, (_, r) => T - 1 - r * 2)];
  const problem = `${R} rows × ${T} keys, ${H}×${D}`;
  const run = (grad: boolean) => () => {
    const mask = new AttentionMask(causalMask({ batch: 1, length: T }));
    const qk = [randn([1, H, T, D], { seed: 1 }), randn([1, H, T, D], { seed: 2 })];
    const inner = opRun(
      grad ? leaves(...qk) : qk.map((t) => keep(t)),
      ([q, k]) => attentionScoresForRows(q!, k!, mask, rows),
      grad,
    );
    return { record: inner.record, dispose: () => (inner.dispose(), mask.destroy()) };
  };
  const scores = H * R * T;
  return [
    labCase(
      "attention-row-scores",
      problem,
      flatCounts(2 * D * scores, scores * D * 4 + H * R * D * 4, scores * 4, scores, 64),
      run(false),
    ),
    labCase(
      "attention-row-scores-dq",
      problem,
      flatCounts(2 * D * scores, scores * D * 4 + scores * 4, H * R * D * 4, H * R * D, 64),
      run(true),
    ),
    labCase(
      "attention-row-scores-dk",
      problem,
      flatCounts(2 * D * scores, scores * D * 4 + scores * 4, H * T * D * 4, H * T * D, 64),
      run(true),
    ),
  ];
}

/** Row kernels (one workgroup per row). */
export const ROWS_LAB: LabFamily = registerLabFamily({
  name: "rows",
  files:
    "ops/rmsnorm.ts, ops/softmax.ts, ops/cross_entropy.ts, ops/l2norm.ts; tests ops/nn_test.ts, ops/misc_test.ts",
  kernels: [
    "rms_norm",
    "rms_norm-backward-x",
    "rms_norm-backward-w",
    "softmax",
    "softmax-backward",
    "l2_normalize",
    "cross_entropy",
    "cross_entropy-reduce",
    "cross_entropy-backward",
  ],
  cases: (scale) => rowCases(scale),
});

/** Element maps, gathers, scatters, reductions, RoPE, dropout, NF4 dequantisation. */
export const ELEMENTWISE_LAB: LabFamily = registerLabFamily({
  name: "elementwise",
  files:
    "ops/map_kernel.ts, ops/gather.ts, ops/reduce.ts, ops/rope.ts, ops/dropout.ts, nf4.ts, tensor.ts (fill); " +
    "tests ops/elementwise_test.ts, ops/nn_test.ts, ops/shape_reduce_test.ts, ops/misc_test.ts",
  kernels: [
    "map",
    "fill",
    "dropout",
    "rope",
    "reduce",
    "max-backward",
    "embedding",
    "embedding-backward-count",
    "embedding-backward-scan",
    "embedding-backward-place",
    "embedding-backward-accumulate",
    "index_select_last",
    "index_select_last-backward",
    "dequantize_nf4",
  ],
  cases: elementCases,
});

/** AdamW and global-norm clipping. */
export const OPTIMIZER_LAB: LabFamily = registerLabFamily({
  name: "optimizer",
  files: "optim/adamw.ts, optim/clip.ts; tests optim/optim_test.ts",
  kernels: ["adamw", "clip-partial", "clip-total", "clip-scale"],
  cases: (scale) => optimizerCases(scale),
});

/** Selected-row attention scores (BlockRank's auxiliary loss and attention ranking). */
export const ROW_SCORES_LAB: LabFamily = registerLabFamily({
  name: "attention-row-scores",
  files:
    "attention/row_scores_kernels.ts, attention/reference.ts; tests attention/row_scores_test.ts",
  kernels: ["attention-row-scores", "attention-row-scores-dq", "attention-row-scores-dk"],
  cases: (scale) => rowScoreCases(scale),
});
