import assert from "node:assert/strict";
import {
  AdamW,
  formatOpProfile,
  getDevice,
  NoGpuError,
  profileOps,
  runtimeCounters,
  syncGpu,
  Tensor,
} from "@irforge/tensor";
import { causalLMFromArrays } from "./load.ts";
import { f32ReferenceWeights, tinyConfig, tinyTrainingStep } from "./testing_support.ts";

async function gpuOrSkip(): Promise<boolean> {
  try {
    const device = await getDevice();
    return device.hasTimestamps;
  } catch (e) {
    if (e instanceof NoGpuError) return false;
    throw e;
  }
}

const step = tinyTrainingStep;

Deno.test("the per-op profile of a tiny training step times every dispatch, grouped by op", async (t) => {
  if (!(await gpuOrSkip())) {
    t.step({ name: "skipped: no WebGPU adapter with timestamp-query", ignore: true, fn: () => {} });
    return;
  }
  const config = tinyConfig();
  const model = causalLMFromArrays(config, f32ReferenceWeights(config, 3));
  model.setTrainable(true);
  const optimizer = new AdamW([...model.parameters().values()]);
  const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [1, 6, 10, 14, 18, 22, 26, 30]];
  try {
    step(model, optimizer, ids).dispose();
    await syncGpu();
    const before = runtimeCounters().dispatches;
    step(model, optimizer, ids).dispose();
    const perStep = runtimeCounters().dispatches - before;
    await syncGpu();

    let loss: Tensor | undefined;
    const counted = runtimeCounters().dispatches;
    const profile = await profileOps(() => {
      loss = step(model, optimizer, ids);
    }, { maxDispatches: perStep });
    const recorded = runtimeCounters().dispatches - counted;
    assert(Number.isFinite(await loss!.item()));
    loss!.dispose();

    assert.equal(profile.dispatches, recorded);
    assert.equal(profile.timedDispatches, recorded, "every dispatch of the step is timed");
    assert.equal(profile.rows.reduce((n, r) => n + r.dispatches, 0), recorded);
    const ops = new Map(profile.rows.map((r) => [r.op, r]));
    // Forward and backward of registered ops are grouped under the op's name.
    for (
      const op of ["rms_norm", "rms_norm.backward", "linear", "linear.backward", "embedding"]
    ) {
      assert(ops.has(op), `profile has ${op}: ${[...ops.keys()].join(", ")}`);
    }
    // Every norm but layer 0's input norm is fused with the residual add before it:
    // post_attention_layernorm with attention's, input_layernorm of layer l > 0 with
    // layer l − 1's MLP residual, the final norm with the last one.
    assert.equal(ops.get("rms_norm")!.dispatches, 1);
    assert.equal(ops.get("add_rms_norm")!.dispatches, 2 * config.numLayers);
    // Backward: dx (with the sum's gradient added) and dweight per fused norm.
    assert.equal(ops.get("add_rms_norm.backward")!.dispatches, 2 * 2 * config.numLayers);
    assert.equal(ops.get("rms_norm.backward")!.dispatches, 2);
    assert.equal(ops.get("rope_qk")!.dispatches, config.numLayers);
    assert.equal(ops.get("swiglu")!.dispatches, config.numLayers);
    // The optimizer launches outside ops: its rows are kernel names.
    assert(ops.has("adamw"), `the optimizer's dispatches are profiled`);
    const total = profile.rows.reduce((s, r) => s + r.share, 0);
    assert(Math.abs(total - 1) < 1e-9, `shares sum to 1 (${total})`);
    for (let i = 1; i < profile.rows.length; i++) {
      assert(profile.rows[i - 1]!.ms >= profile.rows[i]!.ms, "sorted by time");
    }
    const table = formatOpProfile(profile);
    assert.match(table, /rms_norm\.backward/);
    assert.match(table, new RegExp(`total .* ${recorded}$`));
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("with gradient checkpointing the recomputed layers fuse their norms as the forward does", async (t) => {
  if (!(await gpuOrSkip())) {
    t.step({ name: "skipped: no WebGPU adapter with timestamp-query", ignore: true, fn: () => {} });
    return;
  }
  const config = tinyConfig({ numLayers: 3 });
  const model = causalLMFromArrays(config, f32ReferenceWeights(config, 4));
  model.setTrainable(true);
  model.gradientCheckpointing = true;
  const optimizer = new AdamW([...model.parameters().values()]);
  const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [1, 6, 10, 14, 18, 22, 26, 30]];
  try {
    step(model, optimizer, ids).dispose();
    await syncGpu();
    let loss: Tensor | undefined;
    const profile = await profileOps(() => {
      loss = step(model, optimizer, ids);
    });
    assert(Number.isFinite(await loss!.item()));
    loss!.dispose();
    const dispatches = (op: string) => profile.rows.find((r) => r.op === op)?.dispatches ?? 0;
    const L = config.numLayers;
    // Forward: layer 0's input norm alone, 2L fused; the backward recomputes every layer
    // (1 + 2L − 1 fused: the final norm is outside the checkpoints).
    assert.equal(dispatches("rms_norm"), 2);
    assert.equal(dispatches("add_rms_norm"), 2 * L + 2 * L - 1);
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});
