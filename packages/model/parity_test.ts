import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { gpuTest } from "@irforge/tensor/testing";
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
