import assert from "node:assert/strict";
import { gpuTest } from "../testing/mod.ts";
import { setMultiTensorSlotsForTesting } from "../optim/multi_tensor.ts";
import { randnArray } from "../random.ts";
import { runtimeCounters } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { castF16Into } from "./cast_many.ts";
import { cast } from "./elementwise.ts";

gpuTest(
  "castF16Into: bit for bit cast(x, 'f16') over many tensors, in groups, in place",
  async () => {
    // Odd sizes, one past a workgroup, values that round, overflow to inf and go subnormal in f16.
    const sizes = [1, 7, 257, 300, 64, 3, 1025];
    const sources = sizes.map((n, i) => {
      const v = randnArray(n, 40 + i).map((x) => x * 10 ** ((i % 5) - 2));
      if (i === 2) v[0] = 70000, v[1] = -1e-7, v[2] = 65519.9;
      return Tensor.fromArray(Float32Array.from(v), [n]);
    });
    for (const slots of [undefined, 3]) {
      setMultiTensorSlotsForTesting(slots);
      try {
        const targets = sizes.map((n) => Tensor.empty([n], "f16"));
        const before = runtimeCounters().dispatches;
        castF16Into(sources.map((source, i) => ({ source, target: targets[i]! })));
        const launches = runtimeCounters().dispatches - before;
        if (slots === 3) assert.equal(launches, 3, "7 tensors, 3 per launch");
        assert(launches < sizes.length, `${launches} launches`);
        for (let i = 0; i < sizes.length; i++) {
          const expected = cast(sources[i]!, "f16");
          assert.deepEqual(await targets[i]!.toArray(), await expected.toArray(), `tensor ${i}`);
          expected.dispose();
          targets[i]!.dispose();
        }
      } finally {
        setMultiTensorSlotsForTesting(undefined);
      }
    }
    const wrong = Tensor.empty([2], "f16");
    assert.throws(
      () => castF16Into([{ source: sources[0]!, target: wrong }]),
      /castF16Into: Tensor\(f32 \[1\]\) → Tensor\(f16 \[2\]\) must be f32 → f16 of one size/,
    );
    for (const s of [...sources, wrong]) s.dispose();
  },
);
