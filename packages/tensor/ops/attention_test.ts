import { gpuTest } from "../testing/gpu.ts";
import { assertClose } from "../testing/assert_close.ts";
import assert from "node:assert/strict";
import { F16_TOL, F32_TOL, GRAD_TOL } from "../testing/tolerance.ts";
import { AttentionMask, blockRankMask, causalMask } from "../attention/mod.ts";
import {
  referenceAttentionBackward,
  referenceAttentionForward,
  referenceRowScores,
  referenceRowScoresBackward,
} from "../attention/reference.ts";
import { randnArray } from "../random.ts";
import { Tensor } from "../tensor.ts";
import { backward, variable } from "../autograd.ts";
import { mul, sum } from "../mod.ts";
import { attention, attentionScoresForRows } from "./attention.ts";
import { cast } from "./elementwise.ts";

gpuTest(
  "attention op: forward and autograd gradients match the float64 reference (GQA 2, padding)",
  async (_device) => {
    const B = 2, H = 4, Hkv = 2, T = 11, D = 8;
    const meta = causalMask({
      batch: B,
      length: T,
      attentionMask: [Array(T).fill(1), [0, 0, ...Array(T - 2).fill(1)]],
    });
    const mask = new AttentionMask(meta);
    const q = randnArray(B * H * T * D, 1), k = randnArray(B * Hkv * T * D, 2);
    const v = randnArray(B * Hkv * T * D, 3), dOut = randnArray(B * H * T * D, 4);
    const qt = variable(Tensor.fromArray(Float32Array.from(q), [B, H, T, D]));
    const kt = variable(Tensor.fromArray(Float32Array.from(k), [B, Hkv, T, D]));
    const vt = variable(Tensor.fromArray(Float32Array.from(v), [B, Hkv, T, D]));
    const weights = Tensor.fromArray(Float32Array.from(dOut), [B, H, T, D]);
    const out = attention(qt, kt, vt, mask);
    // loss = Σ out ⊙ dOut, so d loss / d out = dOut.
    backward(sum(mul(out, weights)));
    const shape = { heads: H, kvHeads: Hkv, headDim: D, meta };
    const ref = referenceAttentionForward({ ...shape, q, k, v });
    assertClose(await out.toArray(), ref.out, F32_TOL);
    const grads = referenceAttentionBackward({ ...shape, q, k, v, dOut });
    assertClose(await qt.grad!.toArray(), grads.dQ, GRAD_TOL);
    assertClose(await kt.grad!.toArray(), grads.dK, GRAD_TOL);
    assertClose(await vt.grad!.toArray(), grads.dV, GRAD_TOL);
    for (const t of [qt, kt, vt, weights, out]) t.dispose();
    mask.destroy();
  },
);

gpuTest(
  "attentionScoresForRows: BlockRank rows and their gradients match the reference",
  async (_device) => {
    const B = 1, H = 2, Hkv = 1, D = 8;
    const meta = blockRankMask({
      length: 20,
      rows: [{ instruction: 3, documents: [4, 5, 3], query: 4 }],
    });
    const T = 20;
    const mask = new AttentionMask(meta);
    const rows = [[17, 18]];
    const q = randnArray(B * H * T * D, 5), k = randnArray(B * Hkv * T * D, 6);
    const qt = variable(Tensor.fromArray(Float32Array.from(q), [B, H, T, D]));
    const kt = variable(Tensor.fromArray(Float32Array.from(k), [B, Hkv, T, D]));
    const scores = attentionScoresForRows(qt, kt, mask, rows);
    const shape = { heads: H, kvHeads: Hkv, headDim: D, meta, rows: rows.flat(), rowsPerBatch: 2 };
    const ref = referenceRowScores({ ...shape, q, k });
    const got = await scores.toArray();
    for (let i = 0; i < ref.length; i++) {
      if (ref[i] === -Infinity && got[i] !== -Infinity) {
        throw new Error(
          `entry ${i} should be masked`,
        );
      }
    }
    const finite = (a: ArrayLike<number>) => Array.from(a, (x) => (Number.isFinite(x) ? x : 0));
    assertClose(finite(got), finite(ref), F32_TOL);
    // Weight only visible entries so that the loss stays finite.
    const dScores = Float64Array.from(ref, (s, i) => (Number.isFinite(s) ? Math.sin(i) : 0));
    backward(sum(mul(scores, Tensor.fromArray(Float32Array.from(dScores), scores.shape))));
    const grads = referenceRowScoresBackward({ ...shape, q, k, dScores });
    assertClose(await qt.grad!.toArray(), grads.dQ, GRAD_TOL);
    assertClose(await kt.grad!.toArray(), grads.dK, GRAD_TOL);
    mask.destroy();
  },
);

gpuTest(
  "attention op with f16 operands cast from f32 masters: f32 or f16 output, gradients reach the masters",
  async (device) => {
    if (!device.hasF16) {
      console.log("skipped: the adapter lacks shader-f16");
      return;
    }
    const B = 1, H = 4, Hkv = 2, T = 13, D = 16;
    const meta = blockRankMask({
      length: T,
      rows: [{ instruction: 2, documents: [3, 4], query: 4 }],
    });
    const mask = new AttentionMask(meta);
    // f16-representable inputs, so the reference sees exactly what the kernel reads.
    const half = (a: Float64Array) => Float64Array.from(Float16Array.from(a));
    const q = half(randnArray(B * H * T * D, 11)), k = half(randnArray(B * Hkv * T * D, 12));
    const v = half(randnArray(B * Hkv * T * D, 13)), dOut = randnArray(B * H * T * D, 14);
    const shape = { heads: H, kvHeads: Hkv, headDim: D, meta };
    const ref = referenceAttentionForward({ ...shape, q, k, v });
    const grads = referenceAttentionBackward({ ...shape, q, k, v, dOut });
    for (const outDtype of ["f32", "f16"] as const) {
      const qt = variable(Tensor.fromArray(Float32Array.from(q), [B, H, T, D]));
      const kt = variable(Tensor.fromArray(Float32Array.from(k), [B, Hkv, T, D]));
      const vt = variable(Tensor.fromArray(Float32Array.from(v), [B, Hkv, T, D]));
      const weights = Tensor.fromArray(Float32Array.from(dOut), [B, H, T, D]);
      const out = attention(cast(qt, "f16"), cast(kt, "f16"), cast(vt, "f16"), mask, { outDtype });
      assert.equal(out.dtype, outDtype);
      // With an f16 output the gradient arrives in f16 (through the cast's backward).
      const out32 = outDtype === "f16" ? cast(out, "f32") : out;
      backward(sum(mul(out32, weights)));
      assertClose(await out.toArray(), ref.out, outDtype === "f16" ? F16_TOL : F32_TOL);
      for (const t of [qt, kt, vt]) assert.equal(t.grad!.dtype, "f32");
      // Gradients are rounded once to f16 before the cast back to the f32 masters.
      assertClose(await qt.grad!.toArray(), grads.dQ, F16_TOL);
      assertClose(await kt.grad!.toArray(), grads.dK, F16_TOL);
      assertClose(await vt.grad!.toArray(), grads.dV, F16_TOL);
      for (const t of [qt, kt, vt, weights]) t.dispose();
    }
    assert.throws(
      () => {
        const qt = Tensor.fromArray(Float32Array.from(q), [B, H, T, D]);
        const kt = cast(Tensor.fromArray(Float32Array.from(k), [B, Hkv, T, D]), "f16");
        attention(qt, kt, kt, mask);
      },
      /must share a dtype/,
    );
    mask.destroy();
  },
);

gpuTest(
  "attentionScoresForRows with f16 q and k: f32 scores, gradients to the f32 masters",
  async (device) => {
    if (!device.hasF16) {
      console.log("skipped: the adapter lacks shader-f16");
      return;
    }
    const B = 1, H = 2, Hkv = 1, D = 12, T = 20;
    const meta = blockRankMask({
      length: T,
      rows: [{ instruction: 3, documents: [4, 5, 3], query: 4 }],
    });
    const mask = new AttentionMask(meta);
    const rows = [[17, 19]];
    const half = (a: Float64Array) => Float64Array.from(Float16Array.from(a));
    const q = half(randnArray(B * H * T * D, 15)), k = half(randnArray(B * Hkv * T * D, 16));
    const qt = variable(Tensor.fromArray(Float32Array.from(q), [B, H, T, D]));
    const kt = variable(Tensor.fromArray(Float32Array.from(k), [B, Hkv, T, D]));
    const scores = attentionScoresForRows(cast(qt, "f16"), cast(kt, "f16"), mask, rows);
    assert.equal(scores.dtype, "f32");
    const shape = { heads: H, kvHeads: Hkv, headDim: D, meta, rows: rows.flat(), rowsPerBatch: 2 };
    const ref = referenceRowScores({ ...shape, q, k });
    const finite = (a: ArrayLike<number>) => Array.from(a, (x) => (Number.isFinite(x) ? x : 0));
    assertClose(finite(await scores.toArray()), finite(ref), F32_TOL);
    const dScores = Float64Array.from(ref, (s, i) => (Number.isFinite(s) ? Math.cos(i) : 0));
    backward(sum(mul(scores, Tensor.fromArray(Float32Array.from(dScores), scores.shape))));
    const grads = referenceRowScoresBackward({ ...shape, q, k, dScores });
    assertClose(await qt.grad!.toArray(), grads.dQ, F16_TOL);
    assertClose(await kt.grad!.toArray(), grads.dK, F16_TOL);
    mask.destroy();
  },
);
