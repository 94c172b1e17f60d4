/**
 * `checkOp`: runs an op on the GPU and compares its forward with a float64
 * CPU reference, and the gradient of Σ yᵢ·wᵢ (random w) for each
 * differentiable input with central finite differences of the reference.
 *
 * @module
 */

import { backward, variable } from "../autograd.ts";
import type { DType } from "../dtype.ts";
import { mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { randnArray } from "../random.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { assertClose } from "./assert_close.ts";
import { numericGrad } from "./gradcheck.ts";
import { F32_TOL, GRAD_TOL } from "./tolerance.ts";

/** One input of a checked op. */
export interface CheckInput {
  /** Values (rounded to the dtype's precision before both runs for floats). */
  data: ArrayLike<number>;
  /** Shape. */
  shape: number[];
  /** Dtype (default f32). */
  dtype?: DType;
  /** Check the gradient of this input (float inputs only). */
  grad?: boolean;
}

/** What {@link checkOp} runs. */
export interface CheckSpec {
  /** Name for messages. */
  name: string;
  /** Inputs. */
  inputs: CheckInput[];
  /** The GPU computation. */
  gpu: (inputs: Tensor[]) => Tensor;
  /** The float64 reference on the same (rounded) inputs, flattened output. */
  cpu: (inputs: Float64Array[]) => ArrayLike<number>;
  /** Forward tolerance (default F32_TOL). */
  tol?: number;
  /** Gradient tolerance (default GRAD_TOL). */
  gradTol?: number;
  /** Seed of the upstream weights. */
  seed?: number;
  /** Finite-difference step (default 1e-6). */
  h?: number;
}

/** Runs the checks of `spec`; throws on the first mismatch. */
export async function checkOp(spec: CheckSpec): Promise<void> {
  const values = spec.inputs.map((i) =>
    Float64Array.from(
      i.dtype === "i32" || i.dtype === "u32" ? Int32Array.from(i.data) : Float32Array.from(i.data),
    )
  );
  const tensors = spec.inputs.map((inp, k) => {
    const t = Tensor.fromArray(values[k]!, inp.shape, inp.dtype ?? "f32");
    return inp.grad ? variable(t) : t.keep();
  });
  const expected = spec.cpu(values);
  const y = tidy(() => spec.gpu(tensors)).keep();
  assertClose(await y.toArray(), expected, spec.tol ?? F32_TOL, `${spec.name} forward`);
  if (spec.inputs.some((i) => i.grad)) {
    const w = Float64Array.from(Float32Array.from(randnArray(y.size, spec.seed ?? 99)));
    const total = tidy(() => sum(mul(y, Tensor.fromArray(w, y.shape))));
    backward(total);
    total.dispose();
    const loss = (xs: Float64Array[]) => {
      const out = spec.cpu(xs);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i]! * w[i]!;
      return s;
    };
    for (const [k, inp] of spec.inputs.entries()) {
      if (!inp.grad) continue;
      const g = tensors[k]!.grad;
      if (!g) throw new Error(`${spec.name}: input ${k} got no gradient`);
      const numeric = numericGrad(loss, values, k, spec.h);
      assertClose(
        await g.toArray(),
        numeric,
        spec.gradTol ?? GRAD_TOL,
        `${spec.name} grad of input ${k}`,
      );
    }
  }
  for (const t of tensors) {
    t.grad?.dispose();
    t.dispose();
  }
  y.dispose();
}
