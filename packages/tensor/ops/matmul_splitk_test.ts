import { deepEqual, equal, ok } from "node:assert/strict";
import { assertClose, F16_TOL, F32_TOL, gpuTest } from "../testing/mod.ts";
import { noGrad } from "../autograd.ts";
import { randnArray } from "../random.ts";
import { setBindingLimitForTesting } from "../runtime.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { linear, matmulRaw, setMatmulVariant, traceMatmulKernels } from "./matmul.ts";
import { type MatmulVariant, variantName } from "./matmul_kernels.ts";
import { refMatmul } from "./matmul_reference.ts";
import { SMALL_VARIANT } from "./matmul_table.ts";

const round = (t: "f32" | "f16") => (v: ArrayLike<number>) =>
  Float64Array.from(t === "f16" ? Float16Array.from(v) : Float32Array.from(v));

/** The three K loops (single, prefetch, double) and the scalar-load member. */
const VARIANTS: MatmulVariant[] = [
  SMALL_VARIANT,
  { ...SMALL_VARIANT, bk: 32, buffering: "prefetch", pad: 4 },
  { ...SMALL_VARIANT, buffering: "double", pad: 4 },
  { ...SMALL_VARIANT, vec4: false },
];

interface Case {
  batch: number;
  M: number;
  N: number;
  K: number;
  splitK: number;
  /** Effective splits: K ranges are whole 16- or 32-deep K tiles. */
  splits: [number, number];
  bcast?: "a" | "b";
}

const CASES: Case[] = [
  // K not a multiple of the split, odd sizes (scalar loads): ranges 16, 16, 5.
  { batch: 1, M: 7, N: 13, K: 37, splitK: 3, splits: [3, 2] },
  // Aligned (vec4 loads), split 4 of K = 40 gives 3 ranges of whole 16-deep tiles.
  { batch: 1, M: 8, N: 12, K: 40, splitK: 4, splits: [3, 2] },
  // A 1×1 output.
  { batch: 1, M: 1, N: 1, K: 50, splitK: 2, splits: [2, 2] },
  // Batched, and each operand broadcast over the batch.
  { batch: 3, M: 5, N: 8, K: 36, splitK: 2, splits: [2, 2] },
  { batch: 3, M: 5, N: 8, K: 36, splitK: 2, splits: [2, 2], bcast: "b" },
  { batch: 2, M: 6, N: 4, K: 70, splitK: 3, splits: [3, 3], bcast: "a" },
];

async function check(
  v: MatmulVariant,
  c: Case,
  tA: boolean,
  tB: boolean,
  types: ["f32" | "f16", "f32" | "f16"],
  seed: number,
): Promise<void> {
  const aB = c.batch > 1 && c.bcast !== "a", bB = c.batch > 1 && c.bcast !== "b";
  const a = round(types[0])(randnArray((aB ? c.batch : 1) * c.M * c.K, seed));
  const b = round(types[1])(randnArray((bB ? c.batch : 1) * c.K * c.N, seed + 1));
  const aShape = [...(aB ? [c.batch] : []), ...(tA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...(bB ? [c.batch] : []), ...(tB ? [c.N, c.K] : [c.K, c.N])];
  const { result: out, kernels } = traceMatmulKernels(() =>
    noGrad(() =>
      tidy(() =>
        matmulRaw(
          Tensor.fromArray(a, aShape, types[0]),
          Tensor.fromArray(b, bShape, types[1]),
          { transA: tA, transB: tB, variant: v, splitK: c.splitK },
        )
      )
    )
  );
  const what = `${variantName(v)} split ${c.splitK} ${types.join("×")} b${c.batch}${
    c.bcast ? `(${c.bcast} broadcast)` : ""
  } ${c.M}×${c.N}×${c.K} tA=${tA} tB=${tB}`;
  equal(kernels.length, 1, what);
  equal(kernels[0]!.splits, c.splits[v.bk === 32 ? 1 : 0], `splits of ${what}`);
  const ref = refMatmul(a, b, { batch: c.batch, M: c.M, N: c.N, K: c.K, tA, tB, aB, bB });
  assertClose(await out.toArray(), ref, types.includes("f16") ? F16_TOL : F32_TOL, what);
  out.dispose();
}

gpuTest(
  "split-K: K not a multiple of the split, tiny outputs, batch, broadcast, all transposes",
  async () => {
    let seed = 100;
    const transposes = [[false, false], [false, true], [true, false], [true, true]] as const;
    // Every K loop (single, prefetch, double, scalar loads) on the odd and the aligned case;
    // the batch, broadcast and 1×1 cases on the small variant.
    for (const v of VARIANTS) {
      for (const c of CASES.slice(0, 2)) {
        for (const [tA, tB] of transposes) await check(v, c, tA, tB, ["f32", "f32"], seed += 2);
      }
    }
    for (const c of CASES.slice(2)) {
      for (const [tA, tB] of transposes) {
        await check(SMALL_VARIANT, c, tA, tB, ["f32", "f32"], seed += 2);
      }
    }
  },
);

gpuTest("split-K: f16 and mixed operands accumulate in f32", async (d) => {
  if (!d.hasF16) return;
  let seed = 300;
  for (const v of [SMALL_VARIANT, VARIANTS[2]!]) {
    for (const c of [CASES[0]!, CASES[1]!, CASES[4]!]) {
      await check(v, c, false, true, ["f32", "f16"], seed += 2);
      await check(v, c, true, false, ["f16", "f32"], seed += 2);
      await check(v, c, false, false, ["f16", "f16"], seed += 2);
    }
  }
});

gpuTest("split-K: fused bias + silu/gelu run once, in the reduction", async () => {
  const act = {
    silu: (x: number) => x / (1 + Math.exp(-x)),
    gelu: (x: number) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3))),
  };
  let seed = 500;
  for (const v of [SMALL_VARIANT, VARIANTS[3]!]) {
    setMatmulVariant(v, 3);
    try {
      for (
        const [rows, inDim, outDim, name] of [[9, 40, 12, "gelu"], [5, 37, 13, "silu"]] as const
      ) {
        const x = round("f32")(randnArray(rows * inDim, seed++));
        const w = round("f32")(randnArray(outDim * inDim, seed++));
        const bias = round("f32")(randnArray(outDim, seed++));
        const { result: y, kernels } = traceMatmulKernels(() =>
          noGrad(() =>
            tidy(() =>
              linear(
                Tensor.fromArray(x, [rows, inDim]),
                Tensor.fromArray(w, [outDim, inDim]),
                Tensor.fromArray(bias, [outDim]),
                name,
              )
            )
          )
        );
        const what = `${variantName(v)} linear ${rows}×${inDim}→${outDim} ${name} split 3`;
        equal(kernels[0]!.splits, 3, what);
        equal(kernels[0]!.bias, false, `partials carry no bias: ${what}`);
        const ref = refMatmul(x, w, {
          batch: 1,
          M: rows,
          N: outDim,
          K: inDim,
          tA: false,
          tB: true,
          aB: false,
          bB: false,
        }).map((s, i) => act[name](s + bias[i % outDim]!));
        assertClose(await y.toArray(), ref, F32_TOL, what);
        y.dispose();
      }
    } finally {
      setMatmulVariant(undefined);
    }
  }
});

gpuTest("split-K inside split bindings: row split and accumulating K split", async () => {
  let seed = 700;
  setBindingLimitForTesting(2048);
  try {
    for (const v of [SMALL_VARIANT, VARIANTS[3]!]) {
      // W[70, 40] f32 rows are 160 B: row chunks of ≤ 12 (binding offset alignment), each split in 3.
      const w = round("f32")(randnArray(70 * 40, seed++));
      const x = round("f32")(randnArray(5 * 40, seed++));
      // W2[70, 8]: K chunks of 64 then 6 rows; the 64-row chunk splits in 2 and
      // accumulates into C after the first chunk.
      const w2 = round("f32")(randnArray(70 * 8, seed++));
      const x2 = round("f32")(randnArray(3 * 70, seed++));
      const bias = round("f32")(randnArray(8, seed++));
      const { result: [c1, c2], kernels } = traceMatmulKernels(() =>
        noGrad(() =>
          tidy(() => [
            matmulRaw(Tensor.fromArray(x, [5, 40]), Tensor.fromArray(w, [70, 40]), {
              transB: true,
              variant: v,
              splitK: 3,
            }),
            matmulRaw(Tensor.fromArray(x2, [3, 70]), Tensor.fromArray(w2, [70, 8]), {
              variant: v,
              splitK: 2,
              bias: Tensor.fromArray(bias, [8]),
            }),
          ])
        )
      );
      const what = variantName(v);
      const rowChunks = kernels.filter((k) => k.transB);
      const kChunks = kernels.filter((k) => !k.transB);
      ok(rowChunks.length >= 6, `${rowChunks.length} row chunks: ${what}`);
      ok(rowChunks.every((k) => k.splits === 3), `row chunks split: ${what}`);
      deepEqual(kChunks.map((k) => k.splits ?? 1), [2, 1], `K chunks: ${what}`);
      const base = { batch: 1, tA: false, aB: false, bB: false };
      assertClose(
        await c1!.toArray(),
        refMatmul(x, w, { ...base, M: 5, N: 70, K: 40, tB: true }),
        F32_TOL,
        `row split ${what}`,
      );
      assertClose(
        await c2!.toArray(),
        refMatmul(x2, w2, { ...base, M: 3, N: 8, K: 70, tB: false }).map((s, i) =>
          s + bias[i % 8]!
        ),
        F32_TOL,
        `K split ${what}`,
      );
      c1!.dispose();
      c2!.dispose();
    }
  } finally {
    setBindingLimitForTesting(undefined);
  }
});

gpuTest("split-K is deterministic, and routing splits a long-K product with one tile", async () => {
  // M = N = 8, K = 1024: one output tile, K = 2 × SPLIT_MIN_CHUNK, so routing
  // splits in 2 on any adapter (fewer than 2 waves of at least one workgroup).
  const a = round("f32")(randnArray(8 * 1024, 900));
  const b = round("f32")(randnArray(1024 * 8, 901));
  const run = () =>
    traceMatmulKernels(() =>
      noGrad(() =>
        tidy(() =>
          matmulRaw(Tensor.fromArray(a, [1024, 8]), Tensor.fromArray(b, [1024, 8]), {
            transA: true,
          })
        )
      )
    );
  const first = run(), second = run();
  equal(first.kernels[0]!.splits, 2);
  const x = await first.result.toArray(), y = await second.result.toArray();
  deepEqual(Float32Array.from(x), Float32Array.from(y), "bit-identical across runs");
  assertClose(
    x,
    refMatmul(a, b, { batch: 1, M: 8, N: 8, K: 1024, tA: true, tB: false, aB: false, bB: false }),
    F32_TOL,
    "routed split",
  );
  first.result.dispose();
  second.result.dispose();
});
