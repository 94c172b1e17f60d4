import assert from "node:assert/strict";
import { AdamW, getDevice, NoGpuError, runtimeCounters, syncGpu, Tensor } from "@irforge/tensor";
import { CausalLM } from "./causal_lm.ts";
import { causalLMFromArrays } from "./load.ts";
import { f32ReferenceWeights, tinyConfig, tinyTrainingStep } from "./testing_support.ts";

async function gpuOrSkip(): Promise<boolean> {
  try {
    await getDevice();
    return true;
  } catch (e) {
    if (e instanceof NoGpuError) return false;
    throw e;
  }
}

/** A step with fresh inputs every time; row 1 right-padded when `padded`. */
function step(model: CausalLM, optimizer: AdamW, ids: number[][], padded: boolean): Tensor {
  const mask = ids.map((row, b) => row.map((_, t) => (b === 1 && t > 5 ? 0 : 1)));
  return tinyTrainingStep(model, optimizer, ids, padded ? mask : undefined);
}

for (const fp16 of [false, true]) {
  Deno.test(
    `a warm training step${
      fp16 ? " under fp16 (cached f16 weights)" : ""
    } creates no pipeline, no uniform buffer and no GPU buffer`,
    async (t) => {
      if (!(await gpuOrSkip())) {
        t.step({ name: "skipped: no WebGPU adapter", ignore: true, fn: () => {} });
        return;
      }
      const config = tinyConfig();
      const model = causalLMFromArrays(config, f32ReferenceWeights(config, 3));
      model.setTrainable(true);
      if (fp16) model.autocast = "f16";
      const optimizer = new AdamW([...model.parameters().values()]);
      const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [1, 6, 10, 14, 18, 22, 26, 30]];
      try {
        // Warm-up: both mask layouts, so every pipeline and pooled size exists.
        for (const padded of [false, true, false, true]) {
          step(model, optimizer, ids, padded).dispose();
        }
        await syncGpu();
        const casts = model.f16Weights.casts;
        const before = runtimeCounters();
        const loss = step(model, optimizer, ids, true);
        const after = runtimeCounters();
        const lossValue = await loss.item();
        loss.dispose();
        assert(Number.isFinite(lossValue), `loss ${lossValue}`);
        const dispatches = after.dispatches - before.dispatches;
        assert(dispatches > 50, `a training step records its kernels (${dispatches} dispatches)`);
        assert.equal(after.pipelinesCreated - before.pipelinesCreated, 0, "pipelines created");
        assert.equal(
          after.uniformBuffersCreated - before.uniformBuffersCreated,
          0,
          "uniform buffers",
        );
        assert.equal(after.buffersCreated - before.buffersCreated, 0, "GPU buffers created");
        // The f16 copies were refreshed into the buffers the stale ones gave back.
        const matrices = 7 * config.numLayers + 1;
        assert.equal(model.f16Weights.casts - casts, fp16 ? matrices : 0, "weights cast");
      } finally {
        optimizer.dispose();
        model.dispose();
      }
    },
  );
}
