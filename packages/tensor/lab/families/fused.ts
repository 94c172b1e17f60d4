/**
 * Lab family of the fused step kernels: SwiGLU (`silu(gate)·up`), residual
 * add + RMSNorm, RoPE of queries and keys in one dispatch, and the chunked
 * LM head + cross-entropy rows kernel. All are memory-bound: their counts
 * are the bytes they move. References and tests: `ops/fused_test.ts`
 * (against float64 and the unfused ops), `ops/lm_head_loss_test.ts`.
 *
 * @module
 */

import { backward, noGrad, variable, zeroGrad } from "../../autograd.ts";
import { addRmsNorm } from "../../ops/rmsnorm.ts";
import { ropeQK, ropeTable } from "../../ops/rope.ts";
import { swiglu } from "../../ops/swiglu.ts";
import { lmHeadLoss } from "../../ops/lm_head_loss.ts";
import { add, mul } from "../../ops/elementwise.ts";
import { sum } from "../../ops/reduce.ts";
import { randn } from "../../random.ts";
import { keep, tidy } from "../../scope.ts";
import { Tensor } from "../../tensor.ts";
import type { KernelCounts } from "../counts.ts";
import {
  type LabCase,
  type LabFamily,
  type LabRun,
  type LabScale,
  registerLabFamily,
  streamingCounts,
} from "../family.ts";

function labCase(
  kernel: string,
  problem: string,
  counts: KernelCounts,
  prepare: () => LabRun,
): LabCase {
  return { kernel, variant: "default", problem, counts, prepare };
}

/** Records `f` forward (grad: and backward from fixed upstream gradients of every output). */
function run(
  inputs: Tensor[],
  f: (xs: Tensor[]) => Tensor[],
  grad: boolean,
  extra: Tensor[] = [],
): LabRun {
  const ups = grad
    ? noGrad(() => f(inputs)).map((y, i) => {
      const r = keep(randn(y.shape, { seed: 90 + i }));
      y.dispose();
      return r;
    })
    : [];
  return {
    record: () =>
      tidy(() => {
        if (!grad) return noGrad(() => void f(inputs));
        zeroGrad(inputs);
        // Σ sum(yᵢ·upᵢ): every output's gradient reaches the fused backward.
        let total: Tensor | undefined;
        f(inputs).forEach((y, i) => {
          const term = sum(mul(y, ups[i]!));
          total = total ? add(total, term) : term;
        });
        backward(total!);
      }),
    dispose: () => {
      zeroGrad(inputs);
      for (const t of [...inputs, ...ups, ...extra]) t.dispose();
    },
  };
}

function flat(
  flops: number,
  read: number,
  write: number,
  items: number,
  threads = 256,
): KernelCounts {
  return streamingCounts({
    flops,
    readBytes: read,
    writeBytes: write,
    workgroups: Math.ceil(items / threads),
    threads,
  });
}

function fusedCases(scale: LabScale): LabCase[] {
  const [N, F] = scale === "gpu" ? [8192, 14336] : [64, 256];
  const n = N * F, e = n * 4;
  const gu = (grad: boolean) => () => {
    const xs = [randn([N, F], { seed: 1 }), randn([N, F], { seed: 2 })].map((t) =>
      grad ? variable(t) : keep(t)
    );
    return run(xs, ([g, u]) => [swiglu(g!, u!)], grad);
  };
  const [R, D] = scale === "gpu" ? [8192, 4096] : [64, 256];
  const rd = R * D * 4;
  const norm = (grad: boolean) => () => {
    const xs = [randn([R, D], { seed: 3 }), randn([R, D], { seed: 4 }), randn([D], { seed: 5 })]
      .map((t) => grad ? variable(t) : keep(t));
    return run(xs, ([a, b, w]) => addRmsNorm(a!, b!, w!), grad);
  };
  const [B, T, Hq, Hk, Dh] = scale === "gpu" ? [8, 1024, 32, 8, 128] : [2, 16, 4, 2, 16];
  const items = B * T * (Hq + Hk) * (Dh / 2);
  const rope = () => {
    const table = keep(ropeTable(T, Dh, 10000));
    const pos = keep(
      Tensor.fromArray(Array.from({ length: B * T }, (_, i) => i % T), [B, T], "i32"),
    );
    const xs = [randn([B, T, Hq, Dh], { seed: 6 }), randn([B, T, Hk, Dh], { seed: 7 })].map((t) =>
      keep(t)
    );
    return run(xs, ([q, k]) => ropeQK(q!, k!, pos, table), false, [table, pos]);
  };
  const [Nl, Hl, Vl, C] = scale === "gpu" ? [8192, 768, 32768, 512] : [64, 32, 512, 16];
  const head = (grad: boolean) => () => {
    const xs = [randn([Nl, Hl], { seed: 8 }), randn([Vl, Hl], { seed: 9 })].map((t) =>
      grad ? variable(t) : keep(t)
    );
    const t = keep(
      Tensor.fromArray(Array.from({ length: Nl }, (_, i) => (i * 7919) % Vl), [Nl], "i32"),
    );
    return run(xs, ([h, w]) => [lmHeadLoss(h!, w!, t, { chunkRows: C })], grad, [t]);
  };
  const logits = Nl * Vl * 4;
  return [
    labCase(
      "lm_head_ce",
      `${Nl} rows × ${Vl} in chunks of ${C}`,
      streamingCounts({
        flops: 5 * Nl * Vl,
        readBytes: 2 * logits + Nl * 4,
        writeBytes: logits + Nl * 4,
        workgroups: Nl,
        threads: 256,
        workgroupBytes: 1024,
      }),
      head(true),
    ),
    labCase(
      "lm_head_ce-reduce",
      `${Nl} rows`,
      streamingCounts({
        flops: 2 * Nl,
        readBytes: 8 * Nl,
        writeBytes: 8,
        workgroups: 1,
        threads: 256,
        workgroupBytes: 1024,
      }),
      head(false),
    ),
    labCase("swiglu", `${N}×${F}`, flat(5 * n, 2 * e, e, n), gu(false)),
    labCase("swiglu-backward", `${N}×${F}`, flat(10 * n, 3 * e, 2 * e, n), gu(true)),
    labCase(
      "add_rms_norm",
      `${R}×${D}`,
      streamingCounts({
        flops: 5 * R * D,
        readBytes: 2 * rd + D * 4,
        writeBytes: 2 * rd + R * 4,
        workgroups: R,
        threads: 256,
        workgroupBytes: 1024,
      }),
      norm(false),
    ),
    labCase(
      "add_rms_norm-backward-x",
      `${R}×${D}`,
      streamingCounts({
        flops: 7 * R * D,
        readBytes: 3 * rd + D * 4 + R * 4,
        writeBytes: rd,
        workgroups: R,
        threads: 256,
        workgroupBytes: 1024,
      }),
      norm(true),
    ),
    labCase(
      "rope_qk",
      `${B}×${T}, ${Hq}+${Hk} heads of ${Dh}`,
      flat(6 * items, 2 * items * 4 + B * T * 4 + T * Dh * 4, 2 * items * 4, items, 64),
      rope,
    ),
  ];
}

/** The fused step kernels. */
export const FUSED_LAB: LabFamily = registerLabFamily({
  name: "fused",
  files: "ops/swiglu.ts, ops/rmsnorm.ts (addRmsNorm), ops/rope.ts (ropeQK), ops/lm_head_loss.ts; " +
    "tests ops/fused_test.ts, ops/lm_head_loss_test.ts",
  kernels: [
    "swiglu",
    "swiglu-backward",
    "add_rms_norm",
    "add_rms_norm-backward-x",
    "rope_qk",
    "lm_head_ce",
    "lm_head_ce-reduce",
  ],
  cases: (scale) => fusedCases(scale),
});
