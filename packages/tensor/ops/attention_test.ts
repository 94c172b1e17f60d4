import { gpuTest } from "../testing/gpu.ts";
import { assertClose } from "../testing/assert_close.ts";
import { F32_TOL, GRAD_TOL } from "../testing/tolerance.ts";
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
