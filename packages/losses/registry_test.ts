import assert from "node:assert/strict";
import { mean, mul, scale, tidy } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import {
  availableLosses,
  createLoss,
  defineOptions,
  editDistance,
  lossInfo,
  registerLoss,
  resolveLossName,
} from "./mod.ts";
import { checkLoss, randomValues } from "./test_support.ts";

Deno.test("registry: built-in names and aliases", () => {
  assert.deepEqual(availableLosses().filter((n) => !n.startsWith("test_")), [
    "binary_cross_entropy",
    "blockrank_aux",
    "combined",
    "cosine",
    "distill_phase1",
    "distill_phase2",
    "infonce",
    "kl",
    "lambdarank",
    "listnet",
    "lm",
    "margin_mse",
    "matryoshka",
    "mse",
    "ranknet",
  ]);
  assert.equal(resolveLossName("contrastive"), "infonce");
  assert.equal(resolveLossName("info_nce"), "infonce");
  assert.equal(resolveLossName("cross_entropy"), "lm");
  assert.equal(resolveLossName("kl_div"), "kl");
  assert.equal(resolveLossName("nope"), undefined);
  assert.deepEqual(lossInfo("kl_div").aliases, ["kl_div"]);
  assert.equal(createLoss("contrastive").name, "infonce");
});

Deno.test("registry: options are validated, defaults filled", () => {
  assert.deepEqual(createLoss("infonce").options, {
    temperature: 0.05,
    normalize: false,
    in_batch_negatives: true,
  });
  assert.throws(
    () => createLoss("infonce", { temprature: 0.1 }),
    /unknown option "temprature" for loss "infonce"; did you mean "temperature"\?/,
  );
  assert.throws(
    () => createLoss("infonce", { temperature: "0.1" }),
    /option "temperature" of loss "infonce" must be a number > 0, got "0.1"/,
  );
  assert.throws(() => createLoss("infonce", { temperature: 0 }), /must be a number > 0, got 0/);
  assert.throws(() => createLoss("infonce", { normalize: 1 }), /must be true or false, got 1/);
  assert.throws(
    () => createLoss("lambdarank", { reduction: "avg" }),
    /must be one of "sum", "mean", got "avg"/,
  );
  assert.throws(() => createLoss("lambdarank", { k: 2.5 }), /must be an integer ≥ 1/);
  assert.throws(() => createLoss("infnce"), /unknown loss "infnce"; did you mean "infonce"\?/);
  assert.throws(() => createLoss("combined"), /loss "combined" needs option "weights"/);
  assert.throws(
    () => createLoss("combined", { weights: { lm: 1, blockrank_axu: 0.1 } }),
    /unknown loss "blockrank_axu"; did you mean "blockrank_aux"\?/,
  );
  assert.throws(
    () => createLoss("combined", { weights: { lm: 1 }, losses: { kl: {} } }),
    /configures "kl", which is not in "weights"/,
  );
  assert.throws(
    () => createLoss("combined", { weights: { lm: 1, kl: { temperature: 2 } } }),
    /option "weights" of loss "combined" must be a map of names to numbers ≥ 0/,
  );
  assert.throws(
    () => createLoss("matryoshka", { loss: "infonce", dims: [2], weights: [1, 2] }),
    /2 weights for 1 dims/,
  );
  assert.throws(() => registerLoss("infonce", () => createLoss("mse"), { options: {} }), /already/);
  assert.throws(
    () => registerLoss("Bad-Name", () => createLoss("mse"), { options: {} }),
    /snake_case/,
  );
  assert.equal(editDistance("learnign_rate", "learning_rate"), 1);
});

// A user loss registered from outside the package: mean((scale·s)²).
const customOptions = defineOptions({
  factor: { kind: "number", default: 1, description: "multiplies the scores" },
});
registerLoss(
  "test_scaled_square",
  (options) => ({
    name: "test_scaled_square",
    options,
    compute: (inputs) => {
      const loss = tidy(() => {
        const s = scale(inputs.scores!, options.factor);
        return mean(mul(s, s));
      });
      return Promise.resolve({ loss });
    },
  }),
  { aliases: ["test_square"], options: customOptions },
);

gpuTest(
  "registry: a user-registered loss is created by name, alias and inside combined",
  async () => {
    assert(availableLosses().includes("test_scaled_square"));
    const data = randomValues(6, 1);
    const ref = (s: Float64Array, f: number) => s.reduce((a, v) => a + (f * v) ** 2, 0) / s.length;
    await checkLoss({
      loss: createLoss("test_square", { factor: 3 }),
      params: [{ data, shape: [2, 3] }],
      inputs: ([s]) => ({ scores: s }),
      ref: ([s]) => ref(s!, 3),
    });
    assert.throws(() => createLoss("test_square", { factr: 3 }), /did you mean "factor"/);
    const labels = [2, 1, 0, 0, 1, 2];
    const r = await checkLoss({
      loss: createLoss("combined", {
        weights: { test_scaled_square: 0.5, listnet: 1 },
        losses: { test_scaled_square: { factor: 2 } },
      }),
      params: [{ data, shape: [2, 3] }],
      inputs: ([s]) => ({ scores: s, labels }),
      ref: ([s]) => {
        let listnet = 0;
        for (let n = 0; n < 2; n++) {
          const row = Array.from(s!.subarray(3 * n, 3 * n + 3));
          const t = labels.slice(3 * n, 3 * n + 3);
          const zs = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
          const zt = t.reduce((a, v) => a + Math.exp(v), 0);
          row.forEach((v, j) => listnet -= (Math.exp(t[j]!) / zt) * (v - zs));
        }
        return 0.5 * ref(s!, 2) + listnet / 2;
      },
    });
    assert.deepEqual(Object.keys(r.parts), ["test_scaled_square", "listnet"]);
  },
);
