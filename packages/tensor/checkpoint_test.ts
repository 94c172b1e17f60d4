import assert from "node:assert/strict";
import {
  backward,
  noGrad,
  parameter,
  releaseTape,
  tapeLength,
  tapeStats,
  zeroGrad,
} from "./autograd.ts";
import { checkpoint, checkpointMany } from "./checkpoint.ts";
import { add, mul, scale, silu } from "./ops/elementwise.ts";
import { linear } from "./ops/matmul.ts";
import { dropout } from "./ops/dropout.ts";
import { sum } from "./ops/reduce.ts";
import { randnArray } from "./random.ts";
import { memoryStats } from "./runtime.ts";
import { tidy } from "./scope.ts";
import { Tensor } from "./tensor.ts";
import { gpuTest } from "./testing/mod.ts";

const batch = 6, width = 16, hidden = 32;

/** Two residual MLP layers with their own parameters, as a transformer stacks them. */
function makeParams(seed: number) {
  const layer = (k: number) => ({
    up: parameter(Float32Array.from(randnArray(hidden * width, seed + k, 0, 0.3)), [hidden, width]),
    upBias: parameter(Float32Array.from(randnArray(hidden, seed + k + 1, 0, 0.1)), [hidden]),
    down: parameter(Float32Array.from(randnArray(width * hidden, seed + k + 2, 0, 0.3)), [
      width,
      hidden,
    ]),
  });
  return [layer(0), layer(10)];
}
type Layer = ReturnType<typeof makeParams>[number];

function block(layer: Layer, x: Tensor, dropoutSeed: number): Tensor {
  const h = silu(linear(x, layer.up, layer.upBias));
  return add(x, linear(dropout(h, 0.1, dropoutSeed), layer.down));
}

interface Run {
  grads: Float32Array[];
  inputGrad: Float32Array;
  loss: number;
  savedTensors: number;
  savedBytes: number;
  nodes: number;
  liveBytesBeforeBackward: number;
}

/** loss = Σ (2·x → layer0 → layer1)², with or without checkpointing each layer. */
async function run(useCheckpoint: boolean, inputRequiresGrad = true): Promise<Run> {
  const layers = makeParams(3);
  const params = layers.flatMap((l) => [l.up, l.upBias, l.down]);
  const x = parameter(Float32Array.from(randnArray(batch * width, 99)), [batch, width]);
  x.requiresGrad = inputRequiresGrad;
  const before = memoryStats().liveBytes;
  const loss = tidy(() => {
    let h = scale(x, 2); // an outer op, so the checkpoint input has tape history of its own
    layers.forEach((layer, i) => {
      h = useCheckpoint
        ? checkpoint(([input]) => block(layer, input!, 7 + i), [h])
        : block(layer, h, 7 + i);
    });
    return sum(mul(h, h));
  });
  const liveBytesBeforeBackward = memoryStats().liveBytes - before;
  const stats = tapeStats();
  const lossValue = await loss.item();
  backward(loss);
  assert.equal(tapeLength(), 0);
  loss.dispose();
  const grads = await Promise.all(params.map((p) => p.grad!.toArray() as Promise<Float32Array>));
  const inputGrad = x.grad ? await x.grad.toArray() as Float32Array : new Float32Array();
  zeroGrad([...params, x]);
  for (const p of [...params, x]) p.dispose();
  return {
    grads,
    inputGrad,
    loss: lossValue,
    savedTensors: stats.savedTensors,
    savedBytes: stats.savedBytes,
    nodes: stats.nodes,
    liveBytesBeforeBackward,
  };
}

gpuTest("checkpoint: gradients equal the un-checkpointed ones, with less saved", async () => {
  const plain = await run(false);
  const ckpt = await run(true);
  assert.equal(ckpt.loss, plain.loss);
  assert.equal(ckpt.grads.length, 6);
  ckpt.grads.forEach((g, i) => {
    assert.ok(g.some((v) => v !== 0), `param ${i} got a gradient`);
    assert.deepEqual(g, plain.grads[i], `param ${i} gradient is bit-identical`);
  });
  assert.ok(ckpt.inputGrad.some((v) => v !== 0));
  assert.deepEqual(ckpt.inputGrad, plain.inputGrad);
  // Two layers: only their inputs stay on the tape (plus the outer scale/mul/sum).
  assert.ok(
    ckpt.savedTensors < plain.savedTensors,
    `${ckpt.savedTensors} vs ${plain.savedTensors}`,
  );
  assert.ok(ckpt.savedBytes < plain.savedBytes, `${ckpt.savedBytes} vs ${plain.savedBytes}`);
  assert.ok(ckpt.nodes < plain.nodes);
  assert.ok(
    ckpt.liveBytesBeforeBackward < plain.liveBytesBeforeBackward,
    `live bytes after forward: ${ckpt.liveBytesBeforeBackward} vs ${plain.liveBytesBeforeBackward}`,
  );
});

gpuTest("checkpoint: parameters inside get gradients when the input is frozen", async () => {
  const plain = await run(false, false);
  const ckpt = await run(true, false);
  assert.equal(ckpt.inputGrad.length, 0);
  ckpt.grads.forEach((g, i) => {
    assert.ok(g.some((v) => v !== 0), `param ${i} got a gradient`);
    assert.deepEqual(g, plain.grads[i]);
  });
});

gpuTest("checkpoint: a tensor used both inside and outside accumulates both parts", async () => {
  const values = randnArray(width, 5);
  const grads: Float32Array[] = [];
  for (const useCheckpoint of [false, true]) {
    const w = parameter(Float32Array.from(values), [width]);
    const loss = tidy(() => {
      const inside = (t: Tensor) => mul(silu(mul(t, w)), w); // w closed over (a leaf: allowed)
      const y = useCheckpoint ? checkpoint(([t]) => inside(t!), [w]) : inside(w);
      return sum(mul(y, w));
    });
    backward(loss);
    loss.dispose();
    grads.push(await w.grad!.toArray() as Float32Array);
    zeroGrad([w]);
    w.dispose();
  }
  // Σ of two accumulation orders: equal up to rounding.
  grads[1]!.forEach((g, i) => assert.ok(Math.abs(g - grads[0]![i]!) <= 1e-6 * Math.abs(g) + 1e-7));
});

gpuTest("checkpoint: without grad it is fn; closing over a non-leaf is refused", async () => {
  const [layer] = makeParams(1);
  const x = Tensor.fromArray(Float32Array.from(randnArray(batch * width, 2)), [batch, width]);
  const direct = noGrad(() => block(layer!, x, 1));
  const viaCheckpoint = noGrad(() => checkpoint(([t]) => block(layer!, t!, 1), [x]));
  assert.equal(tapeLength(), 0);
  assert.deepEqual(await viaCheckpoint.toArray(), await direct.toArray());
  direct.dispose();
  viaCheckpoint.dispose();

  const w = parameter([1, 2, 3], [3]);
  const before = memoryStats().liveBuffers;
  tidy(() => {
    const computed = scale(w, 3); // requires grad, has tape history
    assert.throws(
      () => checkpoint(([t]) => mul(t!, computed), [Tensor.fromArray([1, 1, 1], [3])]),
      /requires grad and was computed outside fn; pass it in inputs/,
    );
    assert.throws(() => checkpoint(([t]) => t!, [computed]), /returned one of its inputs/);
  });
  assert.equal(tapeLength(), 1); // scale's node only: the refused runs left nothing behind
  releaseTape();
  assert.equal(memoryStats().liveBuffers, before);
  for (const t of [x, w, layer!.up, layer!.upBias, layer!.down]) t.dispose();
});

gpuTest("checkpoint: host state advanced inside fn is rewound for the recomputation", async () => {
  // fn draws a fresh dropout seed per call from a counter, as the LoRA adapter does.
  const counter = {
    calls: 0,
    saveState: () => counter.calls,
    restoreState: (s: unknown) => void (counter.calls = s as number),
  };
  const gradsOf = async (mode: "plain" | "replayed" | "unreplayed") => {
    counter.calls = 0;
    const [layer] = makeParams(4);
    const params = [layer!.up, layer!.upBias, layer!.down];
    const x = Tensor.fromArray(Float32Array.from(randnArray(batch * width, 8)), [batch, width]);
    const fn = (t: Tensor) => block(layer!, t, 100 + counter.calls++);
    const loss = tidy(() => {
      const y = mode === "plain"
        ? fn(x)
        : checkpoint(([t]) => fn(t!), [x], mode === "replayed" ? { state: [counter] } : {});
      return sum(mul(y, y));
    });
    backward(loss);
    loss.dispose();
    const grads = await Promise.all(params.map((p) => p.grad!.toArray()));
    assert.equal(counter.calls, mode === "unreplayed" ? 2 : 1);
    zeroGrad(params);
    for (const t of [...params, x]) t.dispose();
    return grads;
  };
  const plain = await gradsOf("plain");
  assert.deepEqual(await gradsOf("replayed"), plain);
  // Without the state the recomputation draws another mask: the gradients are wrong.
  assert.notDeepEqual(await gradsOf("unreplayed"), plain);
});

gpuTest(
  "checkpointMany: a block handing on two tensors gives the plain gradients bit for bit",
  async () => {
    // Each block returns (stream, delta) with the add left to the next block, as the decoder does.
    const twoOut = (layer: Layer, s: Tensor, d: Tensor): Tensor[] => {
      const x = add(s, d);
      return [mul(x, x), linear(silu(linear(x, layer.up, layer.upBias)), layer.down)];
    };
    const gradsOf = async (useCheckpoint: boolean, secondUsed: boolean) => {
      const layers = makeParams(6);
      const params = layers.flatMap((l) => [l.up, l.upBias, l.down]);
      const x = parameter(Float32Array.from(randnArray(batch * width, 12, 0, 0.5)), [
        batch,
        width,
      ]);
      const zero = Tensor.fromArray(new Float32Array(batch * width), [batch, width]);
      const loss = tidy(() => {
        let pair = [x, zero];
        for (const layer of layers) {
          const f = ([s, d]: Tensor[]) => twoOut(layer, s!, d!);
          pair = useCheckpoint ? checkpointMany(f, pair) : f(pair);
        }
        const [s, d] = pair as [Tensor, Tensor];
        return secondUsed ? sum(mul(add(s, d), s)) : sum(s);
      });
      backward(loss);
      loss.dispose();
      const grads = await Promise.all([...params, x].map((p) => p.grad?.toArray() ?? null));
      zeroGrad([...params, x]);
      for (const t of [...params, x, zero]) t.dispose();
      return grads;
    };
    for (const secondUsed of [true, false]) {
      const plain = await gradsOf(false, secondUsed);
      assert.deepEqual(await gradsOf(true, secondUsed), plain, `second output used: ${secondUsed}`);
    }
    assert.equal(tapeLength(), 0);
  },
);
