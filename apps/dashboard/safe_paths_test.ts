import assert from "node:assert/strict";
import { join } from "node:path";
import { HttpError } from "./http_error.ts";
import {
  isValidRunId,
  isValidRunName,
  resolveInside,
  resolveInsideOrNull,
  resolveRunDir,
  runSegments,
} from "./safe_paths.ts";

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

Deno.test("isValidRunId: one or two run names joined by one slash", () => {
  for (const ok of ["run", "distill-x/phase1", "a/b", "v1.2/_x", "a/metricsx"]) {
    assert.ok(isValidRunId(ok), ok);
  }
  for (
    const bad of [
      "",
      "/",
      "a/",
      "/a",
      "a//b",
      "a/b/c",
      "a/..",
      "../a",
      "a/../../etc",
      "a/./b",
      "a/.b",
      "a\\b",
      "a/b\0",
      "/etc/passwd",
      "a/metrics",
      "a/eval",
      "a/checkpoints",
      "a/config",
      "a/events",
    ]
  ) {
    assert.ok(!isValidRunId(bad), bad);
  }
  assert.deepEqual(runSegments("distill-x/phase2"), ["distill-x", "phase2"]);
  assert.throws(() => runSegments("a/../../etc"), status(400));
});

Deno.test("resolveRunDir: nested runs stay inside and must hold run files", async () => {
  const root = await Deno.makeTempDir();
  const outside = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "distill", "phase1"), { recursive: true });
  await Deno.writeTextFile(join(root, "distill", "phase1", "metrics.jsonl"), "");
  await Deno.mkdir(join(root, "distill", "notes"));
  await Deno.writeTextFile(join(outside, "run.json"), "{}");
  await Deno.symlink(outside, join(root, "distill", "away"));
  await Deno.symlink(join(root, "distill"), join(root, "alias"));

  const realRoot = await Deno.realPath(root);
  assert.equal(
    await resolveRunDir(root, "distill/phase1"),
    join(realRoot, "distill", "phase1"),
  );
  // Through a symlink that stays inside.
  assert.equal(await resolveRunDir(root, "alias/phase1"), join(realRoot, "distill", "phase1"));
  await assert.rejects(() => resolveRunDir(root, "distill/notes"), status(404));
  await assert.rejects(() => resolveRunDir(root, "distill/missing"), status(404));
  await assert.rejects(() => resolveRunDir(root, "distill/away"), status(403));
  await assert.rejects(() => resolveRunDir(root, "distill/../x"), status(400));
  await assert.rejects(() => resolveRunDir(root, "distill/phase1/x"), status(400));
});
