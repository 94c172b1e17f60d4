/**
 * Lab family `matmul`: every curated member of the generated matmul family
 * (`ops/matmul_kernels.ts`, reference `ops/matmul_reference.ts`, variants
 * tested by `ops/matmul_kernels_test.ts`) at the transformer shapes of the
 * H200 sitting, in the three layouts of a linear layer (x·Wᵀ, dX, dW).
 *
 * @module
 */

import { noGrad } from "../../autograd.ts";
import type { Device } from "../../device.ts";
import { matmulRaw } from "../../ops/matmul.ts";
import {
  MATMUL_FAMILY,
  type MatmulVariant,
  variantName,
  variantProblem,
} from "../../ops/matmul_kernels.ts";
import { type MatmulShape, shapeName } from "../../ops/matmul_table.ts";
import { matmulCounts as routedCounts, matmulPassCounts } from "../../ops/matmul_counts.ts";
import {
  subgroupMatrixAvailable,
  subgroupMatrixConfig,
  subgroupMatrixMatmul,
  subgroupMatrixSpec,
  subgroupMatrixUnavailableReason,
  subgroupMatrixWorkgroupLoadsPerFma,
} from "../../ops/matmul_subgroup_matrix.ts";
import { randn } from "../../random.ts";
import { tidy } from "../../scope.ts";
import type { KernelCounts } from "../counts.ts";
import { type LabCase, type LabFamily, type LabScale, registerLabFamily } from "../family.ts";

/** M×K×N of x·Wᵀ at each scale (labels as the benches print them). */
export const MATMUL_PROBLEMS: Record<LabScale, [number, number, number][]> = {
  cpu: [[64, 64, 64], [128, 96, 64]],
  gpu: [[4096, 4096, 4096], [8192, 768, 2048], [8192, 2048, 768], [8192, 768, 32768]],
};

/** The three layouts of one linear layer x·Wᵀ (M×K by N×K): forward, dX, dW. */
export function layerShapes(M: number, K: number, N: number, weight: "f32" | "f16"): MatmulShape[] {
  return [
    { M, N, K, transB: true, bType: weight },
    { M, N: K, K: N, bType: weight },
    { M: N, N: K, K: M, transA: true },
  ];
}

/**
 * Design counts of one member (no split) on one shape, from the matmul
 * owner's counts (`ops/matmul_counts.ts`): A is read once per column tile, B
 * once per row tile; the inner loop loads TM/4 + TN/4 vec4s of workgroup
 * memory for TM·TN FMAs per k.
 */
export function matmulCounts(v: MatmulVariant, s: MatmulShape): KernelCounts {
  return routedCounts({ variant: v, splitK: 1 }, s);
}

function cases(scale: LabScale, device: Device): LabCase[] {
  const out: LabCase[] = [];
  // The split-K path: each problem's dW product (long K, small output) split 4 ways.
  for (const [M, K, N] of MATMUL_PROBLEMS[scale]) {
    const dW = layerShapes(M, K, N, "f32")[2]!;
    const route = { variant: MATMUL_FAMILY[0]!, splitK: 4 };
    const passes = matmulPassCounts(route, dW);
    for (
      const [kernel, counts] of [["matmul", passes.product], [
        "matmul_splitk_reduce",
        passes.reduce,
      ]] as const
    ) {
      if (!counts) continue;
      out.push({
        kernel,
        variant: `${variantName(route.variant)} split ${passes.split.splits}`,
        problem: shapeName(dW),
        counts,
        prepare: () => prepare(dW, route.variant, route.splitK),
      });
    }
  }
  // Subgroup matrices (f16 operands, f32 result), where the adapter offers them.
  if (subgroupMatrixAvailable(device)) {
    for (const [M, K, N] of MATMUL_PROBLEMS[scale]) {
      const shape: MatmulShape = { M, N, K, transB: true, aType: "f16", bType: "f16" };
      const dense = routedCounts({ variant: MATMUL_FAMILY[0]!, splitK: 1 }, shape);
      out.push({
        kernel: "matmul-subgroup-matrix",
        variant: "default",
        problem: shapeName(shape),
        // FLOPs and bytes are the problem's; workgroup loads are the fragment loads.
        counts: {
          ...dense,
          workgroupLoadsPerFma: subgroupMatrixWorkgroupLoadsPerFma(
            subgroupMatrixSpec(subgroupMatrixConfig(device)!, device, {
              aType: "f16",
              bType: "f16",
              transA: false,
              transB: true,
            }, { M, N }),
          ),
        },
        prepare: () => prepareSubgroupMatrix(shape),
      });
    }
  }
  const weights: ("f32" | "f16")[] = device.hasF16 ? ["f32", "f16"] : ["f32"];
  for (const weight of weights) {
    for (const [M, K, N] of MATMUL_PROBLEMS[scale]) {
      for (const shape of layerShapes(M, K, N, weight)) {
        if (weight === "f16" && shape.transA) continue; // dW has no f16 operand
        for (const variant of MATMUL_FAMILY) {
          if (variantProblem(variant, device.limits)) continue;
          out.push({
            kernel: "matmul",
            variant: variantName(variant),
            problem: shapeName(shape),
            counts: matmulCounts(variant, shape),
            prepare: () => prepare(shape, variant),
          });
        }
      }
    }
  }
  return out;
}

function prepareSubgroupMatrix(s: MatmulShape) {
  const a = randn([s.M, s.K], { seed: 1, dtype: "f16" }).keep();
  const b = randn([s.N, s.K], { seed: 2, dtype: "f16" }).keep();
  return {
    record: () => noGrad(() => tidy(() => void subgroupMatrixMatmul(a, b, { transB: true }))),
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

function prepare(s: MatmulShape, variant: MatmulVariant, splitK = 1) {
  const a = randn(s.transA ? [s.K, s.M] : [s.M, s.K], { seed: 1, dtype: s.aType ?? "f32" }).keep();
  const b = randn(s.transB ? [s.N, s.K] : [s.K, s.N], { seed: 2, dtype: s.bType ?? "f32" }).keep();
  return {
    record: () =>
      noGrad(() =>
        tidy(() => void matmulRaw(a, b, { transA: s.transA, transB: s.transB, variant, splitK }))
      ),
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

/** The registered family. */
export const MATMUL_LAB: LabFamily = registerLabFamily({
  name: "matmul",
  files: "ops/matmul_kernels.ts, ops/matmul_splitk.ts, ops/matmul_subgroup_matrix.ts, " +
    "ops/matmul_counts.ts, ops/matmul_reference.ts, ops/matmul_kernels_test.ts, ops/matmul_splitk_test.ts",
  kernels: ["matmul", "matmul_splitk_reduce", "matmul-subgroup-matrix"],
  cases,
  requirements: {
    "matmul-subgroup-matrix": (device) => subgroupMatrixUnavailableReason(device) ?? undefined,
  },
});
