import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "./main.ts";

function capture() {
  const out: string[] = [], err: string[] = [];
  return { out, err, log: (l: string) => out.push(l), error: (l: string) => err.push(l) };
}

Deno.test("train CLI: --help prints usage and exits 0", async () => {
  const c = capture();
  const { code } = await main(["--help"], c.log, c.error);
  assert.equal(code, 0);
  assert.match(c.out.join("\n"), /Usage: deno task train/);
});

Deno.test("train CLI: config problems are listed (no stack trace), exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "cfg.yaml");
    await Deno.writeTextFile(
      path,
      "recipe: biencoder\nmodel:\n  model_name_or_path: x\ndata:\n  data_path: y\ntraining:\n  learnign_rate: 0.1\n",
    );
    const c = capture();
    const { code } = await main(["--config", path, "--set", "training.seed=abc"], c.log, c.error);
    assert.equal(code, 2);
    const text = c.err.join("\n");
    assert.match(text, /invalid configuration \(2 problems\)/);
    assert.match(
      text,
      /cfg\.yaml:7 \(field "training\.learnign_rate"\).*did you mean "learning_rate"/,
    );
    assert.match(text, /--set training\.seed=abc/);
    assert.doesNotMatch(text, /\n\s+at /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI: unknown flag and missing resume config exit 2", async () => {
  const c = capture();
  assert.equal((await main(["--bogus"], c.log, c.error)).code, 2);
  assert.equal((await main(["--resume", "/nonexistent/run"], c.log, c.error)).code, 2);
  assert.match(c.err.join("\n"), /no config\.yaml found/);
});
