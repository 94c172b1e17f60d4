import assert from "node:assert/strict";
import { join } from "node:path";
import { InputError } from "@irforge/data/input-error";
import { outputDirError } from "./output_dir_error.ts";

Deno.test("outputDirError: a path through a file names that file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "data.txt");
    await Deno.writeTextFile(file, "");
    const target = join(file, "runs", "x");
    const refused = await Deno.mkdir(target, { recursive: true }).then(() => null, (e) => e);
    assert.ok(refused instanceof Error, "mkdir under a file must fail");
    const error = await outputDirError(target, refused);
    assert.ok(error instanceof InputError);
    assert.equal(
      error.message,
      `${target}: cannot create the run directory: ${file} is a file, not a directory ` +
        `(choose another training.output_dir)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("outputDirError: other OS refusals keep the OS's words; bugs pass through", async () => {
  const refused = await Deno.mkdir("/proc/irforge-test-run").then(() => null, (e) => e);
  assert.ok(refused instanceof Error, "mkdir in /proc must fail, even for root");
  const error = await outputDirError("/proc/irforge-test-run", refused) as Error;
  assert.ok(error instanceof InputError);
  assert.match(error.message, /^\/proc\/irforge-test-run: cannot create the run directory: /);
  assert.doesNotMatch(error.message, /mkdir '/);
  const bug = new TypeError("x is undefined");
  assert.equal(await outputDirError("/tmp/run", bug), bug);
});
