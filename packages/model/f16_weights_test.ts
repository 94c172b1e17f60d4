import assert from "node:assert/strict";
import { AdamW, cast, memoryStats, noGrad, syncGpu, Tensor, variable } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { F16WeightCache } from "./f16_weights.ts";
import { causalLMFromArrays } from "./load.ts";
import { LoraAdapter } from "./lora/adapter.ts";
import { loraConfig } from "./lora/config.ts";
import { f32ReferenceWeights, tinyConfig, tinyTrainingStep } from "./testing_support.ts";

gpuTest(
  "F16WeightCache: one cast per weight change (AdamW step or host write), f16 as cast gives",
  async () => {
    const cache = new F16WeightCache();
    const values = [0.1, -2.5, 3.0001, 65519, 1e-6, -0.333];
    const w = variable(Tensor.fromArray(values, [2, 3]));
    const optimizer = new AdamW([w]);
    const castNow = async () => {
      const c = noGrad(() => cast(w, "f16"));
      const values = await c.toArray();
      c.dispose();
      return values;
    };
    try {
      const expected = await castNow();
      for (let i = 0; i < 3; i++) {
        const h = cache.half(w);
        assert.equal(h.dtype, "f16");
        assert.deepEqual(await h.toArray(), expected);
        h.dispose();
      }
      assert.equal(cache.casts, 1, "reused until the weight changes");
      w.grad = Tensor.fromArray([1, 1, 1, 1, 1, 1], [2, 3]);
      optimizer.step(0.5);
      optimizer.zeroGrad();
      const stepped = cache.half(w);
      assert.equal(cache.casts, 2, "the optimizer step made the copy stale");
      assert.deepEqual(await stepped.toArray(), await castNow());
      assert.notDeepEqual(await stepped.toArray(), expected);
      stepped.dispose();
      w.write(Float32Array.from(values));
      cache.half(w).dispose();
      assert.equal(cache.casts, 3, "a host write made the copy stale");
      assert.equal(cache.size, 1);
    } finally {
      cache.clear();
      optimizer.dispose();
      w.dispose();
    }
  },
);

gpuTest(
  "fp16 LoRA on a frozen f32 base: the base is cast once for the run and the copies count in memoryStats",
  async () => {
    const config = tinyConfig();
    const model = causalLMFromArrays(config, f32ReferenceWeights(config, 3));
    model.setTrainable(false);
    const adapter = LoraAdapter.create(
      config,
      loraConfig({ r: 2, loraAlpha: 4, targetModules: ["q_proj", "v_proj", "down_proj"] }),
      { seed: 5 },
    ).attach(model);
    model.autocast = "f16";
    const optimizer = new AdamW([...adapter.parameters().values()]);
    const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [1, 6, 10, 14, 18, 22, 26, 30]];
    try {
      await syncGpu();
      const before = memoryStats().liveBytes;
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) {
        const loss = tinyTrainingStep(model, optimizer, ids);
        losses.push(await loss.item());
        loss.dispose();
      }
      assert(losses[2]! < losses[0]!, `the adapter trains (${losses})`);
      const matrices = 7 * config.numLayers + 1;
      assert.equal(model.f16Weights.size, matrices);
      assert.equal(model.f16Weights.casts, matrices, "frozen weights: one cast each for the run");
      // Half the bytes of the f32 matrices, held between steps and visible to the peak report.
      let f32Bytes = 0;
      for (const [name, p] of model.params) {
        if (p.rank === 2 && !name.includes("embed")) f32Bytes += p.byteLength;
      }
      assert(model.f16Weights.bytes >= f32Bytes / 2, `${model.f16Weights.bytes} B cached`);
      assert.equal(memoryStats().liveBytes - before, model.f16Weights.bytes);
      model.autocast = null;
      assert.equal(model.f16Weights.size, 0);
      assert.equal(memoryStats().liveBytes, before, "turning autocast off frees the copies");
    } finally {
      optimizer.dispose();
      adapter.dispose();
      model.dispose();
    }
  },
);
