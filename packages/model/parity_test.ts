import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { backward, sum, variable } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { causalInputs, disposeInputs } from "./model_inputs.ts";
import { loadCausalLM } from "./load.ts";
import { PARITY_TOLERANCE, runParity } from "./parity.ts";

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
