import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest } from "@irforge/tensor/testing";
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

Deno.test("train CLI: --help lists every recipe the trainer runs", async () => {
  const { RECIPES, trainableRecipes } = await import("@irforge/trainer");
  assert.deepEqual(trainableRecipes(), [...RECIPES]);
  const c = capture();
  await main(["--help"], c.log, c.error);
  const help = c.out.join("\n");
  for (const recipe of RECIPES) assert.match(help, new RegExp(`\\b${recipe}\\b`), recipe);
  assert.doesNotMatch(help, /built today/);
});

Deno.test("train CLI: --help gives each recipe its one-line description from the recipe table", async () => {
  const { RECIPE_DEFINITIONS, trainableRecipes } = await import("@irforge/trainer");
  const c = capture();
  await main(["--help"], c.log, c.error);
  const lines = c.out.join("\n").split("\n");
  for (const recipe of trainableRecipes()) {
    const line = lines.find((l) => l.trim().startsWith(`${recipe} `));
    assert.ok(line, `no --help line for ${recipe}`);
    assert.equal(line.trim().replace(/^\S+\s+/, ""), RECIPE_DEFINITIONS[recipe].description);
  }
});

Deno.test("train CLI: a missing data file names its config key; a missing run says how to make it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "cfg.yaml");
    const corpus = join(dir, "corpus.jsonl");
    await Deno.writeTextFile(corpus, "");
    await Deno.writeTextFile(
      path,
      `recipe: crossencoder\nmodel:\n  model_name_or_path: m\ndata:\n  corpus_path: ${corpus}\n` +
        `  queries_path: ${corpus}\n  qrels_path: ${corpus}\n  run_path: ${dir}/top20.txt\n`,
    );
    const c = capture();
    const { code } = await main(["--config", path], c.log, c.error);
    assert.equal(code, 2);
    assert.deepEqual(c.err, [
      `data.run_path in ${path} points to ${dir}/top20.txt, which does not exist; make the ` +
      `candidate run with deno task bm25 --corpus ${corpus} --queries ${corpus} ` +
      `--out ${dir}/top20.txt --k 20`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adapterHint: only llvmpipe through OpenGL (no shader-f16) gets the lavapipe hint", async () => {
  const { adapterHint } = await import("./adapter_hint.ts");
  const llvmpipe = { description: "llvmpipe (LLVM 15.0.6, 256 bits)" } as never;
  const gl = adapterHint({ adapter: llvmpipe, hasF16: false, isCpuAdapter: true });
  assert.match(
    gl!,
    /llvmpipe through OpenGL.*at least 5× faster.*apt-get install mesa-vulkan-drivers/,
  );
  assert.equal(adapterHint({ adapter: llvmpipe, hasF16: true, isCpuAdapter: true }), undefined);
  const nvidia = { description: "NVIDIA H200" } as never;
  assert.equal(adapterHint({ adapter: nvidia, hasF16: false, isCpuAdapter: false }), undefined);
});

// Paths the file system refuses even to root (which ignores directory permissions): a directory
// under a regular file, and one in /proc.
gpuTest(
  "train CLI: an output directory that cannot be created is one sentence naming it",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "notes.txt");
      await Deno.writeTextFile(file, "keep me");
      const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      // /proc refuses root with ENOENT; other users may be refused permission first.
      const cases = [
        [join(file, "run"), escape(`${file} is a file, not a directory`)],
        ["/proc/irforge-run", "(No such file or directory|permission denied)"],
      ] as const;
      for (const [outputDir, reason] of cases) {
        const c = capture();
        const { code } = await main(
          ["--set", `training.output_dir=${outputDir}`, "--set", "training.max_steps=1"],
          c.log,
          c.error,
        );
        assert.equal(code, 2, outputDir);
        assert.equal(c.err.length, 1, c.err.join("\n"));
        assert.match(
          c.err[0]!,
          new RegExp(`^${escape(outputDir)}: cannot create the run directory: ${reason}`),
        );
        assert.match(c.err[0]!, /choose another training\.output_dir\)$/);
        assert.doesNotMatch([...c.out, ...c.err].join("\n"), /\n\s+at |Uncaught/);
      }
      assert.equal(await Deno.readTextFile(file), "keep me");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
