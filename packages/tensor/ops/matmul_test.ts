import assert from "node:assert/strict";
import {
  assertClose,
  F16_TOL,
  F32_TOL,
  gpuTest,
  GRAD_TOL,
  numericGrad,
  relativeError,
} from "../testing/mod.ts";
import { backward, noGrad, variable } from "../autograd.ts";
import { randnArray } from "../random.ts";
import { setBindingLimitForTesting } from "../runtime.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";
import { linear, matmul } from "./matmul.ts";
import { refMatmul } from "./matmul_reference.ts";
import { sum } from "./reduce.ts";

const f32 = (v: ArrayLike<number>) => Float64Array.from(Float32Array.from(v));

const CASES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 7, 13, 5],
  [1, 33, 65, 17],
  [3, 7, 13, 5],
  [2, 70, 9, 66],
];

gpuTest("matmul forward: all transpose flags, odd sizes, batch and broadcast", async () => {
  let seed = 100;
  for (const [batch, M, N, K] of CASES) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        for (const bcast of batch > 1 ? ["none", "a", "b"] : ["none"]) {
          const aB = bcast !== "a", bB = bcast !== "b";
          const a = f32(randnArray((aB ? batch : 1) * M * K, seed++));
          const b = f32(randnArray((bB ? batch : 1) * K * N, seed++));
          const aShape = [...(aB && batch > 1 ? [batch] : []), ...(tA ? [K, M] : [M, K])];
          const bShape = [...(bB && batch > 1 ? [batch] : []), ...(tB ? [N, K] : [K, N])];
          const c = noGrad(() =>
            tidy(() =>
              matmul(Tensor.fromArray(a, aShape), Tensor.fromArray(b, bShape), {
                transA: tA,
                transB: tB,
              })
            )
          );
          const ref = refMatmul(a, b, {
            batch,
            M,
            N,
            K,
            tA,
            tB,
            aB: aB && batch > 1,
            bB: bB && batch > 1,
          });
          assertClose(
            await c.toArray(),
            ref,
            F32_TOL,
            `${batch}×${M}×${N}×${K} tA=${tA} tB=${tB} ${bcast}`,
          );
          c.dispose();
        }
      }
    }
  }
});

gpuTest("matmul backward: gradients for both operands incl. broadcast weight", async () => {
  let seed = 300;
  for (
    const [batch, M, N, K, tA, tB, bcastB] of [
      [1, 5, 4, 3, false, false, false],
      [1, 5, 4, 3, true, true, false],
      [2, 3, 4, 5, false, true, true],
      [2, 3, 4, 5, true, false, true],
      [2, 3, 2, 4, false, false, false],
    ] as [number, number, number, number, boolean, boolean, boolean][]
  ) {
    const bBatched = !bcastB && batch > 1;
    const a = f32(randnArray(batch * M * K, seed++));
    const b = f32(randnArray((bBatched ? batch : 1) * K * N, seed++));
    const w = f32(randnArray(batch * M * N, seed++));
    const aShape = [...(batch > 1 ? [batch] : []), ...(tA ? [K, M] : [M, K])];
    const bShape = [...(bBatched ? [batch] : []), ...(tB ? [N, K] : [K, N])];
    const cShape = [...(batch > 1 ? [batch] : []), M, N];
    const at = variable(Tensor.fromArray(a, aShape)), bt = variable(Tensor.fromArray(b, bShape));
    backward(
      tidy(() => sum(mul(matmul(at, bt, { transA: tA, transB: tB }), Tensor.fromArray(w, cShape)))),
    );
    const L = ([x, y]: Float64Array[]) =>
      refMatmul(x!, y!, { batch, M, N, K, tA, tB, aB: batch > 1, bB: bBatched })
        .reduce((s, v, i) => s + v * w[i]!, 0);
    assertClose(await at.grad!.toArray(), numericGrad(L, [a, b], 0), GRAD_TOL, "dA");
    assertClose(await bt.grad!.toArray(), numericGrad(L, [a, b], 1), GRAD_TOL, "dB");
    for (const t of [at, bt, at.grad!, bt.grad!]) t.dispose();
  }
});

gpuTest("linear: HF [out, in] weight, bias, fused silu/gelu, f16 weight, grads", async () => {
  const [rows, inDim, outDim] = [6, 9, 7];
  const x = f32(randnArray(rows * inDim, 1)), w = f32(randnArray(outDim * inDim, 2));
  const bias = f32(randnArray(outDim, 3)), g = f32(randnArray(rows * outDim, 4));
  const ref = ([xv, wv, bv]: Float64Array[]) => {
    const y = refMatmul(xv!, wv!, {
      batch: 1,
      M: rows,
      N: outDim,
      K: inDim,
      tA: false,
      tB: true,
      aB: false,
      bB: false,
    });
    return y.map((v, i) => v + bv![i % outDim]!);
  };
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const fused = noGrad(() =>
    tidy(() =>
      linear(
        Tensor.fromArray(x, [2, 3, inDim]),
        Tensor.fromArray(w, [outDim, inDim]),
        Tensor.fromArray(bias, [outDim]),
        "silu",
      )
    )
  );
  assertClose(await fused.toArray(), ref([x, w, bias]).map(silu), F32_TOL, "fused silu");
  const half = noGrad(() =>
    tidy(() =>
      linear(Tensor.fromArray(x, [rows, inDim]), Tensor.fromArray(w, [outDim, inDim], "f16"))
    )
  );
  assertClose(await half.toArray(), ref([x, w, new Float64Array(outDim)]), F16_TOL, "f16 weight");
  const xt = variable(Tensor.fromArray(x, [2, 3, inDim]));
  const wt = variable(Tensor.fromArray(w, [outDim, inDim]));
  const bt = variable(Tensor.fromArray(bias, [outDim]));
  backward(tidy(() => sum(mul(linear(xt, wt, bt, "silu"), Tensor.fromArray(g, [2, 3, outDim])))));
  const L = (v: Float64Array[]) => ref(v).reduce((s, y, i) => s + silu(y) * g[i]!, 0);
  assertClose(await xt.grad!.toArray(), numericGrad(L, [x, w, bias], 0), GRAD_TOL, "dx");
  assertClose(await wt.grad!.toArray(), numericGrad(L, [x, w, bias], 1), GRAD_TOL, "dW");
  assertClose(await bt.grad!.toArray(), numericGrad(L, [x, w, bias], 2), GRAD_TOL, "db");
  for (const t of [fused, half, xt, wt, bt, xt.grad!, wt.grad!, bt.grad!]) t.dispose();
});

gpuTest("linear halfGradient: dx and dW are products of the f16-rounded gradient", async (d) => {
  if (!d.hasF16) return;
  const [rows, inDim, outDim] = [6, 9, 7];
  const round16 = (v: ArrayLike<number>) => Float64Array.from(Float16Array.from(v));
  // x f32 and a frozen-like f16 weight, so dx comes back in f32 and shows the rounding.
  const x = f32(randnArray(rows * inDim, 11)), w = round16(randnArray(outDim * inDim, 12));
  const g = f32(randnArray(rows * outDim, 13));
  const base = { batch: 1, aB: false, bB: false };
  const dxOf = (gv: Float64Array) =>
    refMatmul(gv, w, { ...base, M: rows, N: inDim, K: outDim, tA: false, tB: false });
  const dwOf = (gv: Float64Array) =>
    refMatmul(gv, x, { ...base, M: outDim, N: inDim, K: rows, tA: true, tB: false });
  for (const halfGradient of [true, false]) {
    const xt = variable(Tensor.fromArray(x, [rows, inDim]));
    const wt = variable(Tensor.fromArray(w, [outDim, inDim], "f16"));
    backward(
      tidy(() =>
        sum(
          mul(
            linear(xt, wt, undefined, "none", { halfGradient }),
            Tensor.fromArray(g, [rows, outDim]),
          ),
        )
      ),
    );
    const dx = await xt.grad!.toArray();
    const gUsed = halfGradient ? round16(g) : g;
    // f16×f16 products are exact in f32; only the f32 sum differs from float64.
    assertClose(dx, dxOf(gUsed), 1e-6, `dx, halfGradient ${halfGradient}`);
    // dW is stored f16 (the weight's dtype): within one f16 rounding of the reference.
    assertClose(await wt.grad!.toArray(), dwOf(gUsed), 1e-3, `dW, halfGradient ${halfGradient}`);
    if (halfGradient) {
      const apart = relativeError(dx, dxOf(g)).relative;
      assert.ok(apart > 1e-5, `the rounding of dy is not visible in dx (${apart})`);
    }
    for (const t of [xt, wt, xt.grad!, wt.grad!]) t.dispose();
  }
});

gpuTest("matmul splits a right operand larger than one storage binding", async () => {
  // 2 KiB bindings: [70, 8] f32 weights (2240 B) are split into row ranges of 64.
  const a = f32(randnArray(5 * 8, 7)),
    w = f32(randnArray(70 * 8, 8)),
    a2 = f32(randnArray(3 * 70, 9));
  setBindingLimitForTesting(2048);
  try {
    const [c1, c2] = noGrad(() =>
      tidy(() => [
        matmul(Tensor.fromArray(a, [5, 8]), Tensor.fromArray(w, [70, 8]), { transB: true }),
        matmul(Tensor.fromArray(a2, [3, 70]), Tensor.fromArray(w, [70, 8])),
      ])
    );
    const base = { batch: 1, tA: false, aB: false, bB: false };
    assertClose(
      await c1!.toArray(),
      refMatmul(a, w, { ...base, M: 5, N: 70, K: 8, tB: true }),
      F32_TOL,
      "row split",
    );
    assertClose(
      await c2!.toArray(),
      refMatmul(a2, w, { ...base, M: 3, N: 8, K: 70, tB: false }),
      F32_TOL,
      "K split",
    );
    c1!.dispose();
    c2!.dispose();
  } finally {
    setBindingLimitForTesting(undefined);
  }
});
