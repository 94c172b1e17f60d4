import { assertClose, checkOp, gpuTest } from "../testing/mod.ts";
import { backward, variable, zeroGrad } from "../autograd.ts";
import { add, cast, mul, silu } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { addRmsNorm, rmsNorm } from "./rmsnorm.ts";
import { rope, ropeQK, ropeTable } from "./rope.ts";
import { swiglu } from "./swiglu.ts";
import { randnArray } from "../random.ts";
import { keep, tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";

interface Leaf {
  data: ArrayLike<number>;
  shape: number[];
  dtype?: "f32" | "i32";
  grad?: boolean;
}

/**
 * Runs `f` on fresh leaves, backpropagates Σ outᵢ·rᵢ (fixed random rᵢ, a
 * subset of outputs when `use` says so) and returns the outputs and the
 * leaves' gradients.
 */
async function valuesAndGrads(
  leaves: Leaf[],
  f: (xs: Tensor[]) => Tensor[],
  use?: boolean[],
): Promise<{ outs: Float32Array[]; grads: (Float32Array | null)[] }> {
  const xs = leaves.map((l) => {
    const t = Tensor.fromArray(Array.from(l.data), l.shape, l.dtype ?? "f32");
    return l.grad === false ? keep(t) : variable(t);
  });
  let kept: Tensor[] = [];
  const loss = tidy(() => {
    const ys = f(xs);
    kept = ys.map((y) => keep(y.shareAs(y.shape)));
    let total: Tensor | undefined;
    ys.forEach((y, i) => {
      if (use && !use[i]) return;
      const r = Tensor.fromArray(randnArray(y.size, 500 + i), y.shape);
      const term = sum(mul(cast(y, "f32"), r));
      total = total ? add(total, term) : term;
    });
    return total!;
  });
  backward(loss);
  loss.dispose();
  const outs = await Promise.all(kept.map((y) => y.toArray() as Promise<Float32Array>));
  const grads = await Promise.all(
    xs.map((x) => (x.grad ? x.grad.toArray() as Promise<Float32Array> : null)),
  );
  zeroGrad(xs);
  for (const t of [...xs, ...kept]) t.dispose();
  return { outs, grads };
}

async function assertSameAsUnfused(
  name: string,
  leaves: Leaf[],
  fused: (xs: Tensor[]) => Tensor[],
  unfused: (xs: Tensor[]) => Tensor[],
  use?: boolean[],
): Promise<void> {
  const a = await valuesAndGrads(leaves, fused, use);
  const b = await valuesAndGrads(leaves, unfused, use);
  a.outs.forEach((o, i) => assertClose(o, b.outs[i]!, 1e-5, `${name}: output ${i}`));
  a.grads.forEach((g, i) => {
    const other = b.grads[i] ?? null;
    if (g === null && other === null) return;
    // An input reached only through an unused output: the fused op gives zeros, the unfused none.
    const zero = new Float32Array((g ?? other)!.length);
    assertClose(g ?? zero, other ?? zero, 1e-5, `${name}: gradient of input ${i}`);
  });
}

const leaf = (shape: number[], seed: number, grad = true): Leaf => ({
  data: randnArray(shape.reduce((a, b) => a * b, 1), seed),
  shape,
  grad,
});

gpuTest("swiglu: forward and both gradients match a float64 reference", async () => {
  const n = 3 * 37;
  await checkOp({
    name: "swiglu",
    inputs: [
      { data: randnArray(n, 1).map((v) => 3 * v), shape: [3, 37], grad: true },
      { data: randnArray(n, 2), shape: [3, 37], grad: true },
    ],
    gpu: ([g, u]) => swiglu(g!, u!),
    cpu: ([g, u]) => g!.map((x, i) => (x / (1 + Math.exp(-x))) * u![i]!),
  });
});

gpuTest("swiglu matches mul(silu(gate), up) to 1e-5, forward and backward", async () => {
  await assertSameAsUnfused(
    "swiglu",
    [leaf([5, 300], 3), leaf([5, 300], 4)],
    ([g, u]) => [swiglu(g!, u!)],
    ([g, u]) => [mul(silu(g!), u!)],
  );
});

gpuTest(
  "addRmsNorm matches add then rmsNorm to 1e-5 (both outputs used, or only the norm)",
  async () => {
    const shapes: [number, number][] = [[7, 96], [3, 300]];
    for (const [R, D] of shapes) {
      for (const use of [[true, true], [false, true], [true, false]]) {
        await assertSameAsUnfused(
          `addRmsNorm ${R}×${D} uses ${use}`,
          [leaf([R, D], 5), leaf([R, D], 6), {
            data: randnArray(D, 7).map((v) => 1 + 0.3 * v),
            shape: [D],
          }],
          ([a, b, w]) => addRmsNorm(a!, b!, w!, 1e-5),
          ([a, b, w]) => {
            const s = add(a!, b!);
            return [s, rmsNorm(s, w!, 1e-5)];
          },
          use,
        );
      }
    }
  },
);

gpuTest(
  "ropeQK matches two rope calls to 1e-5, forward and backward (also with only q used)",
  async () => {
    const [B, T, Hq, Hk, D] = [2, 5, 4, 2, 16];
    const table = ropeTable(16, D, 10000).keep();
    const pos = Array.from({ length: B * T }, (_, i) => (i * 3) % 11);
    const leaves: Leaf[] = [
      leaf([B, T, Hq, D], 8),
      leaf([B, T, Hk, D], 9),
      { data: pos, shape: [B, T], dtype: "i32", grad: false },
    ];
    for (const use of [[true, true], [true, false], [false, true]]) {
      await assertSameAsUnfused(
        `ropeQK uses ${use}`,
        leaves,
        ([q, k, p]) => ropeQK(q!, k!, p!, table),
        ([q, k, p]) => [rope(q!, p!, table), rope(k!, p!, table)],
        use,
      );
    }
    table.dispose();
  },
);
