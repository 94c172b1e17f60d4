import assert from "node:assert/strict";
import { createLoss } from "@irforge/losses";
import { combinedListwiseOptions } from "./listwise_combined.ts";

Deno.test("combinedListwiseOptions: lm_weight/ranking_weight weigh the parts, the rest configures the ranking loss", () => {
  assert.deepEqual(combinedListwiseOptions("listnet", {}), {
    weights: { lm: 1, listnet: 1 },
    losses: {},
  });
  const first = combinedListwiseOptions("ranknet", { ranking_weight: 10, weighted: true });
  assert.deepEqual(first, {
    weights: { lm: 1, ranknet: 10 },
    losses: { ranknet: { weighted: true } },
  });
  // The combined loss accepts them (an unknown ranknet option would be refused by name).
  assert.equal(createLoss("combined", first).name, "combined");
  assert.throws(
    () => createLoss("combined", combinedListwiseOptions("ranknet", { weigthed: true })),
    /weigthed/,
  );
  assert.throws(
    () => combinedListwiseOptions("listnet", { lm_weight: "x" }),
    /training\.loss_options\.lm_weight: expected a number ≥ 0, got x/,
  );
});
