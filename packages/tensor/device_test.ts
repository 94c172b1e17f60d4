import assert from "node:assert/strict";
import { describeDevice, deviceFacts, loadDawn, providerChoice } from "./device.ts";
import { gpuTest } from "./testing/gpu.ts";

Deno.test("providerChoice: auto by default, deno/dawn, one sentence for anything else", () => {
  assert.equal(providerChoice(""), "auto");
  assert.equal(providerChoice(" Dawn "), "dawn");
  assert.equal(providerChoice("deno"), "deno");
  assert.throws(
    () => providerChoice("wgpu"),
    /IRFORGE_WEBGPU must be auto, deno or dawn, got "wgpu"/,
  );
});

gpuTest("the device reports its provider, subgroup sizes and features", (device) => {
  const asked = providerChoice();
  if (asked === "deno") assert.equal(device.provider, "deno");
  // Deno's WebGPU (wgpu) exposes neither subgroups nor subgroup matrices.
  if (device.provider === "deno") {
    assert.equal(device.subgroups, false);
    assert.equal(device.subgroupMatrix, false);
  }
  if (device.subgroups) {
    assert.ok(device.subgroupMinSize >= 1 && device.subgroupMinSize <= device.subgroupMaxSize);
    assert.ok(device.features.has("subgroups"));
  } else {
    assert.equal(device.subgroupMaxSize, 0);
  }
  assert.equal(device.subgroupMatrix, device.features.has("chromium-experimental-subgroup-matrix"));
  const line = describeDevice(device);
  assert.ok(line.startsWith(`webgpu ${device.provider} · `), line);
  const facts = deviceFacts(device);
  assert.equal(facts.provider, device.provider);
  assert.deepEqual(facts.features, [...device.features].sort());
});

Deno.test("Dawn's null backend: loads where the package does, with irforge's toggles", async () => {
  const dawn = await loadDawn(["backend=null"]);
  if ("error" in dawn) {
    console.warn(`skipped: npm:webgpu does not load here (${dawn.error})`);
    return;
  }
  const adapter = await dawn.gpu.requestAdapter();
  assert.ok(adapter, "the null backend always has an adapter");
  // allow_unsafe_apis is what exposes the experimental subgroup-matrix feature.
  assert.ok(adapter.features.has("chromium-experimental-subgroup-matrix"));
  assert.ok(adapter.features.has("subgroups"));
});
