import assert from "node:assert/strict";
import { parseDawnPasses } from "./dawn_passes.ts";

Deno.test("parseDawnPasses: a pass per line, settings for its environment, ! excludes", () => {
  const passes = parseDawnPasses(`
    LP_NATIVE_VECTOR_WIDTH=128 packages/tensor packages/model !packages/tensor/lab

    packages/tensor/ops/row_reduce_test.ts A=x=y
  `);
  assert.deepEqual(passes, [
    {
      env: { LP_NATIVE_VECTOR_WIDTH: "128" },
      args: ["packages/tensor", "packages/model", "--ignore=packages/tensor/lab"],
      label: "LP_NATIVE_VECTOR_WIDTH=128 packages/tensor packages/model !packages/tensor/lab",
    },
    {
      env: { A: "x=y" },
      args: ["packages/tensor/ops/row_reduce_test.ts"],
      label: "packages/tensor/ops/row_reduce_test.ts A=x=y",
    },
  ]);
  assert.deepEqual(parseDawnPasses(undefined), []);
  assert.deepEqual(parseDawnPasses(" \n "), []);
});

Deno.test("parseDawnPasses: a line without a test path is named", () => {
  assert.throws(
    () => parseDawnPasses("packages/model\nLP_NATIVE_VECTOR_WIDTH=128 !packages/tensor/lab"),
    /IRFORGE_TEST_DAWN line 2 names no test path: "LP_NATIVE_VECTOR_WIDTH=128 !packages\/tensor\/lab"/,
  );
});
