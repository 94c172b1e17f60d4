import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { backward, sum, variable } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { causalInputs, disposeInputs } from "./model_inputs.ts";
import { PARITY_TOLERANCE, runParity } from "./parity.ts";
import { join } from "node:path";
import type { ModelConfig } from "./config.ts";
import { causalLMFromArrays, loadCausalLM } from "./load.ts";
import { type TensorToWrite, writeSafetensors } from "./safetensors/writer.ts";
import {
  f32ReferenceWeights,
  labelsFor,
  type ModelCase,
  referenceCaseLoss,
  referenceLogits,
  tinyConfig,
} from "./testing_support.ts";

gpuTest(
  "hf-mistral-tiny: logits, loss and every gradient match transformers (float64)",
  async () => {
    const dir = sharedPathOrSkip("HF Mistral parity", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    model.setTrainable(true);
    const report = await runParity(model, `${dir}/fixture.safetensors`);
    console.log(JSON.stringify(report));
    assert.equal(report.grads_compared, 21);
    assert.ok(report.logits_rel_err <= PARITY_TOLERANCE.logits, `logits ${report.logits_rel_err}`);
    assert.ok(report.loss_abs_err <= PARITY_TOLERANCE.loss, `loss ${report.loss_abs_err}`);
    assert.ok(report.grad_max_rel_err <= PARITY_TOLERANCE.grad, `grad ${report.worst_grad}`);
    assert.ok(report.passed);
    model.dispose();
  },
);

gpuTest(
  "forward from inputsEmbeds equals forward from ids, and gradients reach the embeddings",
  async () => {
    const dir = sharedPathOrSkip("inputsEmbeds", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    const inputs = causalInputs([[1, 17, 33, 5, 250, 9]]);
    const fromIds = await model.forward(inputs).logits!.toArray();
    const embeds = variable(model.embed(inputs.inputIds));
    const { logits } = model.forward(inputs, { inputsEmbeds: embeds });
    assert.deepEqual(await logits!.toArray(), fromIds);
    backward(sum(logits!));
    assert.ok(embeds.grad && (await embeds.grad.toArray()).some((v) => v !== 0));
    disposeInputs(inputs);
    model.dispose();
  },
);

/**
 * A right-padded fixture built with the float64 CPU reference, in the layout
 * transformers' fixtures use (int64 inputs, float64 logits, loss and
 * `grad.<name>` tensors). Like transformers, the reference lets a right pad
 * attend to the real tokens before it, so its pad-position logits differ from
 * irforge's; the gradients it holds are central finite differences of the
 * reference loss (a few whole tensors: every entry costs two forwards).
 */
async function writeRightPaddedFixture(path: string, c: ModelCase, gradNames: string[]) {
  const batch = c.ids.length, length = c.ids[0]!.length;
  const labels = labelsFor(c.ids, c.attentionMask);
  const int64 = (rows: number[][]) => ({
    dtype: "I64" as const,
    shape: [batch, length],
    data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
  });
  const f64 = (shape: number[], data: Float64Array) => ({ dtype: "F64" as const, shape, data });
  const tensors: Record<string, TensorToWrite> = {
    input_ids: int64(c.ids),
    attention_mask: int64(c.attentionMask!),
    labels: int64(labels),
    logits: f64([batch, length, c.config.vocabSize], referenceLogits(c)),
    loss: f64([], Float64Array.of(referenceCaseLoss(c))),
  };
  const h = 1e-5;
  for (const name of gradNames) {
    const weights = new Map([...c.weights].map(([n, w]) => [n, Float64Array.from(w)]));
    const w = weights.get(name)!;
    const grad = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const keep = w[i]!;
      w[i] = keep + h;
      const up = referenceCaseLoss(c, weights);
      w[i] = keep - h;
      const down = referenceCaseLoss(c, weights);
      w[i] = keep;
      grad[i] = (up - down) / (2 * h);
    }
    tensors[`grad.${name}`] = f64([...shapeOf(c.config, name)], grad);
  }
  await writeSafetensors(path, tensors);
}

function shapeOf(config: ModelConfig, name: string): number[] {
  if (name.endsWith("norm.weight")) return [config.hiddenSize];
  if (name.endsWith("v_proj.weight")) {
    return [config.numKvHeads * config.headDim, config.hiddenSize];
  }
  throw new Error(`shapeOf: ${name} is not used here`);
}

gpuTest(
  "right padding: logits compared where attention_mask is 1; loss and gradients agree",
  async () => {
    const config = tinyConfig();
    // Row 1 is right-padded: its pads (id 0) would attend to the 5 real tokens before them.
    const c: ModelCase = {
      config,
      weights: f32ReferenceWeights(config, 23),
      ids: [[1, 17, 33, 5, 60, 9, 41, 2], [1, 71, 12, 88, 2, 0, 0, 0]],
      attentionMask: [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]],
    };
    const gradNames = [
      "model.norm.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.1.self_attn.v_proj.weight",
      "model.layers.1.post_attention_layernorm.weight",
    ];
    const dir = await Deno.makeTempDir();
    const model = causalLMFromArrays(config, c.weights);
    try {
      const fixture = join(dir, "right_padded.safetensors");
      await writeRightPaddedFixture(fixture, c, gradNames);
      model.setTrainable(true);
      const report = await runParity(model, fixture);
      assert.equal(report.logits_positions, 13);
      assert.equal(report.logits_pad_positions, 3);
      assert.equal(report.grads_compared, gradNames.length);
      assert.ok(
        report.logits_rel_err <= PARITY_TOLERANCE.logits,
        `logits ${report.logits_rel_err}`,
      );
      assert.ok(report.loss_abs_err <= PARITY_TOLERANCE.loss, `loss ${report.loss_abs_err}`);
      assert.ok(
        report.grad_max_rel_err <= PARITY_TOLERANCE.grad,
        `grad ${report.worst_grad} ${report.grad_max_rel_err}`,
      );
      assert.ok(report.passed);
      // Compared at every position, the pads' logits would fail the check.
      assert.ok(
        report.logits_rel_err_incl_pads > 100 * PARITY_TOLERANCE.logits,
        `pads differ by only ${report.logits_rel_err_incl_pads}`,
      );
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
