import assert from "node:assert/strict";
import { assertClose, gpuTest } from "../testing/mod.ts";
import { backward, variable, zeroGrad } from "../autograd.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { linear } from "./matmul.ts";
import { lmHeadLoss } from "./lm_head_loss.ts";
import { memoryStats, resetPeakMemory, syncGpu } from "../runtime.ts";
import { randnArray } from "../random.ts";
import { Tensor } from "../tensor.ts";

/** float64 mean cross-entropy of h·Wᵀ and its gradients (ignore −100). */
function reference(h: Float64Array, w: Float64Array, t: number[], N: number, H: number, V: number) {
  const dh = new Float64Array(N * H), dw = new Float64Array(V * H);
  let loss = 0, count = 0;
  for (let n = 0; n < N; n++) if (t[n] !== -100) count++;
  for (let n = 0; n < N; n++) {
    if (t[n] === -100) continue;
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      for (let k = 0; k < H; k++) z[v]! += h[n * H + k]! * w[v * H + k]!;
    }
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
    loss += lse - z[t[n]!]!;
    for (let v = 0; v < V; v++) {
      const g = (Math.exp(z[v]! - lse) - (v === t[n] ? 1 : 0)) / count;
      for (let k = 0; k < H; k++) {
        dh[n * H + k]! += g * w[v * H + k]!;
        dw[v * H + k]! += g * h[n * H + k]!;
      }
    }
  }
  return { loss: count ? loss / count : 0, dh, dw };
}

gpuTest(
  "lmHeadLoss: loss and both gradients match float64 and the unfused path, any chunking",
  async () => {
    const [N, H, V] = [11, 24, 70];
    const hData = Float64Array.from(Float32Array.from(randnArray(N * H, 1)));
    const wData = Float64Array.from(Float32Array.from(randnArray(V * H, 2).map((x) => 0.3 * x)));
    const targets = Array.from({ length: N }, (_, i) => (i % 4 === 3 ? -100 : (i * 13) % V));
    const ref = reference(hData, wData, targets, N, H, V);
    const run = async (f: (h: Tensor, w: Tensor, t: Tensor) => Tensor) => {
      const h = variable(Tensor.fromArray(hData, [N, H]));
      const w = variable(Tensor.fromArray(wData, [V, H]));
      const t = Tensor.fromArray(targets, [N], "i32");
      const loss = f(h, w, t);
      backward(loss);
      const out = {
        loss: await loss.item(),
        dh: await h.grad!.toArray(),
        dw: await w.grad!.toArray(),
      };
      zeroGrad([h, w]);
      for (const x of [loss, h, w, t]) x.dispose();
      return out;
    };
    const unfused = await run((h, w, t) => crossEntropy(linear(h, w), t));
    for (const chunkRows of [1, 4, 11, 64]) {
      const fused = await run((h, w, t) => lmHeadLoss(h, w, t, { chunkRows }));
      assertClose([fused.loss], [ref.loss], 1e-5, `loss, chunks of ${chunkRows}`);
      assertClose(fused.dh, ref.dh, 1e-4, `dhidden vs float64, chunks of ${chunkRows}`);
      assertClose(fused.dw, ref.dw, 1e-4, `dweight vs float64, chunks of ${chunkRows}`);
      assertClose([fused.loss], [unfused.loss], 1e-5, `loss vs unfused, chunks of ${chunkRows}`);
      assertClose(fused.dh, unfused.dh, 1e-5, `dhidden vs unfused, chunks of ${chunkRows}`);
      assertClose(fused.dw, unfused.dw, 1e-5, `dweight vs unfused, chunks of ${chunkRows}`);
    }
  },
);

gpuTest("lmHeadLoss: all rows ignored → 0 and zero gradient; a frozen head gets none", async () => {
  const h = variable(Tensor.fromArray(randnArray(3 * 8, 3), [3, 8]));
  const w = Tensor.fromArray(randnArray(5 * 8, 4), [5, 8]);
  const t = Tensor.fromArray([-100, -100, -100], [3], "i32");
  const loss = lmHeadLoss(h, w, t);
  backward(loss);
  assert.equal(await loss.item(), 0);
  assert.deepEqual([...(await h.grad!.toArray())], new Array(24).fill(0));
  assert.equal(w.grad, null);
  zeroGrad([h]);
  for (const x of [loss, h, w, t]) x.dispose();
});

gpuTest(
  "lmHeadLoss never holds all rows' logits: peak memory below the unfused path's",
  async () => {
    const [N, H, V] = [256, 16, 2048];
    const h = variable(Tensor.fromArray(randnArray(N * H, 5), [N, H]));
    const w = variable(Tensor.fromArray(randnArray(V * H, 6), [V, H]));
    const t = Tensor.fromArray(Array.from({ length: N }, (_, i) => i % V), [N], "i32");
    const peak = async (f: () => Tensor) => {
      await syncGpu();
      resetPeakMemory();
      const base = memoryStats().liveBytes;
      const loss = f();
      backward(loss);
      await syncGpu();
      const p = memoryStats().peakLiveBytes - base;
      loss.dispose();
      zeroGrad([h, w]);
      return p;
    };
    const unfused = await peak(() => crossEntropy(linear(h, w), t));
    const fused = await peak(() => lmHeadLoss(h, w, t, { chunkRows: 32 }));
    const logitsBytes = N * V * 4;
    assert(unfused >= logitsBytes, `unfused peak ${unfused} holds the logits (${logitsBytes})`);
    assert(fused < logitsBytes / 2, `fused peak ${fused} B < half the logits (${logitsBytes} B)`);
    for (const x of [h, w, t]) x.dispose();
  },
);
