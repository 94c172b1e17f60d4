import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { gpuTest } from "@irforge/tensor/testing";
import { loadCausalLM } from "../load.ts";
import { PARITY_TOLERANCE, runParity } from "../parity.ts";
import type { LoraAdapter } from "./adapter.ts";
import { attachAdapterForParity } from "./parity_adapter.ts";
import { joinedLoraFixture } from "./test_fixture.ts";

gpuTest(
  "hf-mistral-tiny + peft adapter: logits, loss and every LoRA gradient match peft (float64)",
  async () => {
    const dir = sharedPathOrSkip("peft LoRA parity", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const model = await loadCausalLM(dir);
    const gradients = await attachAdapterForParity(model, dir);
    // 2 layers × 7 projections × (A, B)
    assert.equal(gradients.size, 28);
    const fixture = await joinedLoraFixture(dir);
    const report = await runParity(model, fixture, gradients);
    console.log(JSON.stringify(report));
    assert.equal(report.grads_compared, 28);
    assert.ok(report.logits_rel_err <= PARITY_TOLERANCE.logits, `logits ${report.logits_rel_err}`);
    assert.ok(report.loss_abs_err <= PARITY_TOLERANCE.loss, `loss ${report.loss_abs_err}`);
    assert.ok(
      report.grad_max_rel_err <= PARITY_TOLERANCE.grad,
      `grad ${report.worst_grad} ${report.grad_max_rel_err}`,
    );
    assert.ok(report.passed);
    // The base is frozen: no parameter of the model received a gradient.
    for (const [name, p] of model.params) {
      assert.equal(p.requiresGrad, false, name);
      assert.equal(p.grad, null, `${name} got a gradient`);
    }
    (model.adapter as LoraAdapter).dispose();
    model.dispose();
  },
);
