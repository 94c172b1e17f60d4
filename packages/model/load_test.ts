import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import { gpuTest } from "@irforge/tensor/testing";
import { loadCausalLM, saveCausalLM } from "./load.ts";
import { quantizeModelNf4 } from "./qlora/quantize_model.ts";
import { causalInputs, disposeInputs } from "./model_inputs.ts";
import { openCheckpoint } from "./safetensors/checkpoint.ts";

const ids = [[1, 5, 9, 33, 2, 100, 7, 8]];

gpuTest(
  "loading straight into NF4 equals loading in f32 then quantising (bit-identical logits)",
  async () => {
    const dir = sharedPathOrSkip("NF4 load", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const direct = await loadCausalLM(dir, { nf4: { doubleQuant: true } });
    assert.equal(direct.quantized.size, 14);
    assert.ok(![...direct.params.keys()].some((n) => n.includes("_proj")));
    const later = await loadCausalLM(dir);
    await quantizeModelNf4(later, { doubleQuant: true });
    const inputs = causalInputs(ids);
    const a = await direct.forward(inputs).logits!.toArray();
    const b = await later.forward(inputs).logits!.toArray();
    assert.deepEqual(a, b);
    disposeInputs(inputs);
    direct.dispose();
    later.dispose();
  },
);

gpuTest("save then load round-trips every parameter bit for bit", async () => {
  const dir = sharedPathOrSkip("save/load round trip", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  const out = await Deno.makeTempDir();
  await saveCausalLM(model, out);
  const original = await openCheckpoint(dir);
  const saved = await openCheckpoint(out);
  assert.deepEqual(saved.names().sort(), original.names().sort());
  for (const name of original.names()) {
    assert.deepEqual(
      await saved.read(name, { as: "f32" }),
      await original.read(name, { as: "f32" }),
      name,
    );
  }
  original.close();
  saved.close();
  model.dispose();
  await Deno.remove(out, { recursive: true });
});
