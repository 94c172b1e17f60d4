import { equal, ok } from "node:assert/strict";
import { gpuTest } from "@irforge/tensor/testing";
import { pcgHash, uniformHashArray, uniformTensor } from "./random_fill.ts";

Deno.test("pcgHash agrees with a BigInt evaluation of the PCG-RXS-M-XS formula", () => {
  // The same formula in exact integer arithmetic, for a few inputs.
  for (const x of [0, 1, 12345, 0xdeadbeef, 0xffffffff]) {
    const s = (BigInt(x) * 747796405n + 2891336453n) & 0xffffffffn;
    const word = (((s >> ((s >> 28n) + 4n)) ^ s) * 277803737n) & 0xffffffffn;
    equal(pcgHash(x), Number((word >> 22n) ^ word), `x = ${x}`);
  }
});

gpuTest(
  "fillUniform writes exactly the CPU reference (f32) and its f16 rounding",
  async (device) => {
    const n = 5000, bound = 0.37;
    const expected = uniformHashArray(n, 42, bound);
    const t = uniformTensor([n], "f32", 42, bound);
    const got = await t.toArray();
    t.dispose();
    for (let i = 0; i < n; i++) equal(got[i], expected[i], `element ${i}`);
    let min = Infinity, max = -Infinity, sum = 0;
    for (const v of expected) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    ok(min >= -bound && max < bound && max > 0.9 * bound && min < -0.9 * bound);
    ok(Math.abs(sum / n) < 0.02, `mean ${sum / n}`);
    if (device.hasF16) {
      const h = uniformTensor([n], "f16", 42, bound);
      const half = await h.toArray();
      h.dispose();
      for (let i = 0; i < n; i++) equal(half[i], Math.fround(new Float16Array([expected[i]!])[0]!));
    }
  },
);
