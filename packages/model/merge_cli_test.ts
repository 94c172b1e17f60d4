// `deno task merge` in a subprocess: it never writes over its inputs or an existing output.
import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";

const CLI = new URL("./cli/merge.ts", import.meta.url).pathname;

async function merge(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("merge CLI: refuses --out equal to --base or an existing directory (even with --force for inputs)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = join(dir, "base"), adapter = join(dir, "adapter"), out = join(dir, "out");
    for (const d of [base, adapter, out]) await Deno.mkdir(d);
    await Deno.writeTextFile(join(base, "model.safetensors"), "precious");
    await Deno.writeTextFile(join(out, "keep.txt"), "mine");
    for (const extra of [[], ["--force"]]) {
      const same = await merge(["--base", base, "--adapter", adapter, "--out", base, ...extra]);
      assert.equal(same.code, 1);
      assert.equal(
        same.stderr,
        `merge: error: --out ${base} is the same path as --base ${base}; ` +
          `choose another output so the input is not overwritten\n`,
      );
    }
    const existing = await merge(["--base", base, "--adapter", adapter, "--out", out]);
    assert.equal(existing.code, 1);
    assert.match(existing.stderr, /^merge: error: --out .*out already exists .*--force/);
    assert.equal(await Deno.readTextFile(join(base, "model.safetensors")), "precious");
    assert.equal(await Deno.readTextFile(join(out, "keep.txt")), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merge CLI: --force replaces an output only once the merged checkpoint is complete", async () => {
  const fixture = sharedPathOrSkip("merge CLI", "fixtures", "hf-mistral-tiny");
  if (!fixture) return;
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "merged");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "old.txt"), "old");
    // A missing adapter fails before anything is written: the old output stays.
    const failed = await merge([
      "--base",
      fixture,
      "--adapter",
      join(dir, "nope"),
      "--out",
      out,
      "--force",
    ]);
    assert.equal(failed.code, 1);
    assert.equal(await Deno.readTextFile(join(out, "old.txt")), "old");
    const ok = await merge(["--base", fixture, "--adapter", fixture, "--out", out, "--force"]);
    assert.equal(ok.code, 0, ok.stderr);
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.ok(names.includes("model.safetensors") && names.includes("config.json"), names.join());
    assert.ok(!names.includes("old.txt"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["merged"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
