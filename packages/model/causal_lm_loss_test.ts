import { assertClose, gpuTest } from "@irforge/tensor/testing";
import { backward, getDevice, Tensor, tidy, zeroGrad } from "@irforge/tensor";
import { CausalLM } from "./causal_lm.ts";
import { causalLMFromArrays } from "./load.ts";
import { causalInputs, disposeInputs } from "./model_inputs.ts";
import { f32ReferenceWeights, tinyConfig } from "./testing_support.ts";

for (const tie of [false, true]) {
  gpuTest(
    `causalLmLoss (LM head + cross-entropy, no logits) equals lmLoss(logits): loss and every gradient${
      tie ? ", tied embeddings" : ""
    }`,
    async () => {
      await getDevice();
      const config = tinyConfig({ tieWordEmbeddings: tie });
      const model = causalLMFromArrays(config, f32ReferenceWeights(config, 5));
      model.setTrainable(true);
      const ids = [[1, 5, 9, 13, 17, 21, 25, 29], [1, 6, 10, 14, 18, 22, 26, 30]];
      const inputs = causalInputs(ids);
      const shifted = CausalLM.shiftedTargets(Int32Array.from(ids.flat()), 2, 8);
      shifted[3] = -100;
      const targets = Tensor.fromArray(shifted, [16], "i32");
      const run = async (fused: boolean) => {
        const loss = tidy(() => {
          const l = fused
            ? model.causalLmLoss(model.forward(inputs, { output: "hidden" }).hidden!, targets)
            : CausalLM.lmLoss(model.forward(inputs).logits!, targets);
          backward(l);
          return l;
        });
        const grads = new Map<string, Float32Array>();
        for (const [name, p] of model.parameters()) {
          grads.set(name, (await p.grad!.toArray()) as Float32Array);
        }
        const value = await loss.item();
        loss.dispose();
        zeroGrad(model.parameters().values());
        return { value, grads };
      };
      const a = await run(false), b = await run(true);
      assertClose([b.value], [a.value], 1e-5, "loss");
      for (const [name, g] of a.grads) assertClose(b.grads.get(name)!, g, 1e-5, name);
      disposeInputs(inputs);
      targets.dispose();
      model.dispose();
    },
  );
}
