import assert from "node:assert/strict";
import { join } from "node:path";
import { HttpError } from "./http_error.ts";
import { isValidRunName, resolveInside, resolveInsideOrNull, resolveRunDir } from "./safe_paths.ts";

const status = (code: number) => (e: unknown) => e instanceof HttpError && e.status === code;

Deno.test("isValidRunName", () => {
  for (const ok of ["blockrank-dl19", "run_1", "a", "v1.2", "_tmp", "A".repeat(128)]) {
    assert.ok(isValidRunName(ok), ok);
  }
  for (
    const bad of [
      "",
      ".",
      "..",
      "a..b",
      ".hidden",
      "-x",
      "a/b",
      "a\\b",
      "/etc",
      "<script>",
      "a b",
      "é",
      "A".repeat(129),
      "a\0",
    ]
  ) {
    assert.ok(!isValidRunName(bad), bad);
  }
});

Deno.test("resolveInside follows symlinks only while they stay inside", async () => {
  const root = await Deno.makeTempDir();
  const outside = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "real-run"));
  await Deno.writeTextFile(join(root, "real-run", "config.yaml"), "a: 1\n");
  await Deno.writeTextFile(join(outside, "secret"), "x");
  // A run that is a symlink to another run inside the root is fine.
  await Deno.symlink(join(root, "real-run"), join(root, "alias"));
  await Deno.symlink(outside, join(root, "away"));
  await Deno.symlink(join(outside, "secret"), join(root, "real-run", "leak"));
  // A relative symlink climbing out.
  await Deno.symlink("../../", join(root, "real-run", "up"));

  const realRoot = await Deno.realPath(root);
  assert.equal(await resolveRunDir(root, "alias"), join(realRoot, "real-run"));
  assert.equal(
    await resolveInside(root, ["alias", "config.yaml"]),
    join(realRoot, "real-run", "config.yaml"),
  );
  await assert.rejects(() => resolveRunDir(root, "away"), status(403));
  await assert.rejects(() => resolveInside(root, ["real-run", "leak"]), status(403));
  await assert.rejects(() => resolveInside(root, ["real-run", "up"]), status(403));
  for (const segment of ["..", ".", "", "a/b", "/etc", "a\\b", "a\0"]) {
    await assert.rejects(() => resolveInside(root, ["real-run", segment]), status(400), segment);
  }
  await assert.rejects(() => resolveRunDir(root, "../x"), status(400));
  await assert.rejects(() => resolveRunDir(root, "missing"), status(404));
  assert.equal(await resolveInsideOrNull(root, ["real-run", "nothing"]), null);
  assert.equal(await resolveInsideOrNull(join(root, "no-root"), ["x"]), null);
  // A file is not a run.
  await Deno.writeTextFile(join(root, "file"), "");
  await assert.rejects(() => resolveRunDir(root, "file"), status(404));
});
