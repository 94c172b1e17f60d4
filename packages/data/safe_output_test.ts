import assert from "node:assert/strict";
import { join } from "node:path";
import { checkOutput, OutputError, writeDirectoryAtomic, writeFileAtomic } from "./safe_output.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("checkOutput: refuses an output that is an input, even with force", () =>
  withDir(async (dir) => {
    const corpus = join(dir, "c.jsonl");
    await Deno.writeTextFile(corpus, "{}\n");
    for (const force of [false, true]) {
      await assert.rejects(
        checkOutput(join(dir, ".", "c.jsonl"), {
          inputs: [{ flag: "--corpus", path: corpus }],
          force,
        }),
        (e: Error) =>
          e instanceof OutputError && /--out .* is the same path as --corpus/.test(e.message),
      );
    }
    // a symlink to the input is the input
    await Deno.symlink(corpus, join(dir, "link"));
    await assert.rejects(
      checkOutput(join(dir, "link"), { inputs: [{ flag: "--corpus", path: corpus }] }),
      OutputError,
    );
  }));

Deno.test("checkOutput: refuses a directory that holds an input (replacing it would delete it)", () =>
  withDir(async (dir) => {
    await Deno.mkdir(join(dir, "base"));
    await assert.rejects(
      checkOutput(dir, { inputs: [{ flag: "--base", path: join(dir, "base") }], force: true }),
      /contains --base/,
    );
  }));

Deno.test("checkOutput: an existing file or non-empty directory needs force; empty ones do not", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "run.txt"), "x");
    await assert.rejects(checkOutput(join(dir, "run.txt")), /already exists .*--force/);
    await checkOutput(join(dir, "run.txt"), { force: true });
    await assert.rejects(checkOutput(dir, { flag: "--out" }), /non-empty directory/);
    await Deno.mkdir(join(dir, "empty"));
    await checkOutput(join(dir, "empty"));
    await checkOutput(join(dir, "new", "deeper"));
  }));

Deno.test("writeFileAtomic: replaces whole, leaves no temporary file, names the path on failure", () =>
  withDir(async (dir) => {
    const path = join(dir, "out.txt");
    await Deno.writeTextFile(path, "old");
    await writeFileAtomic(path, "new");
    assert.equal(await Deno.readTextFile(path), "new");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["out.txt"]);
    const missing = join(dir, "no-such-dir", "out.txt");
    await assert.rejects(
      writeFileAtomic(missing, "x"),
      (e: Error) => e instanceof OutputError && e.message.startsWith(`cannot write ${missing}:`),
    );
  }));

Deno.test("writeDirectoryAtomic: a failing fill leaves the previous output untouched", () =>
  withDir(async (dir) => {
    const out = join(dir, "model");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "weights"), "precious");
    await assert.rejects(
      writeDirectoryAtomic(out, async (tmp) => {
        await Deno.writeTextFile(join(tmp, "weights"), "half");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await Deno.readTextFile(join(out, "weights")), "precious");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model"]);
    const n = await writeDirectoryAtomic(out, async (tmp) => {
      await Deno.writeTextFile(join(tmp, "weights"), "merged");
      return 7;
    });
    assert.equal(n, 7);
    assert.equal(await Deno.readTextFile(join(out, "weights")), "merged");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model"]);
  }));
