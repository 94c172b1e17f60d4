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
  variantThreads,
  variantWorkgroupBytes,
} from "../../ops/matmul_kernels.ts";
import { type MatmulShape, shapeName } from "../../ops/matmul_table.ts";
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

const bytesOf = (t: "f32" | "f16" | undefined) => (t === "f16" ? 2 : 4);

/**
 * Design counts of one member on one shape: each workgroup reads a BM×K
 * panel of A and a K×BN panel of B once, so A is read ⌈N/BN⌉ times and B
 * ⌈M/BM⌉ times; the inner loop loads TM/4 + TN/4 vec4s of workgroup memory
 * for TM·TN FMAs per k.
 */
export function matmulCounts(v: MatmulVariant, s: MatmulShape): KernelCounts {
  const batch = s.batch ?? 1;
  const ea = bytesOf(s.aType), eb = bytesOf(s.bType);
  const rowTiles = Math.ceil(s.M / v.bm), colTiles = Math.ceil(s.N / v.bn);
  const loadsPerK = v.tm / 4 + v.tn / 4;
  return {
    flops: 2 * s.M * s.N * s.K * batch,
    minBytes: batch * (s.M * s.K * ea + s.K * s.N * eb + s.M * s.N * 4),
    globalReadBytes: batch * (colTiles * s.M * s.K * ea + rowTiles * s.K * s.N * eb),
    globalWriteBytes: batch * s.M * s.N * 4,
    workgroupLoadsPerFma: loadsPerK / (v.tm * v.tn),
    workgroups: rowTiles * colTiles * batch,
    threadsPerWorkgroup: variantThreads(v),
    workgroupBytes: variantWorkgroupBytes(v),
  };
}

function cases(scale: LabScale, device: Device): LabCase[] {
  const out: LabCase[] = [];
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

function prepare(s: MatmulShape, variant: MatmulVariant) {
  const a = randn(s.transA ? [s.K, s.M] : [s.M, s.K], { seed: 1, dtype: s.aType ?? "f32" }).keep();
  const b = randn(s.transB ? [s.N, s.K] : [s.K, s.N], { seed: 2, dtype: s.bType ?? "f32" }).keep();
  return {
    record: () =>
      noGrad(() =>
        tidy(() => void matmulRaw(a, b, { transA: s.transA, transB: s.transB, variant }))
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
  files: "ops/matmul_kernels.ts, ops/matmul_reference.ts, ops/matmul_kernels_test.ts",
  kernels: ["matmul"],
  cases,
});
