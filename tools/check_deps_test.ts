import assert from "node:assert/strict";
import { checkDeps, formatViolation, importSites } from "./check_deps.ts";

const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const script = new URL("./check_deps.ts", import.meta.url).pathname;

/** Writes `files` (path → text) under a fresh temporary directory. */
async function workspace(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "irforge_check_deps_" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${root}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeTextFile(`${root}/${path}`, text);
  }
  return root;
}

function member(name: string, exports: Record<string, string>): string {
  return JSON.stringify({ name, version: "0.1.0", exports });
}

const BASE = {
  "deno.json": JSON.stringify({
    workspace: ["./packages/data", "./packages/eval", "./apps/viewer", "./apps/other"],
  }),
  "packages/data/deno.json": member("@irforge/data", { ".": "./mod.ts", "./trec": "./trec.ts" }),
  "packages/data/mod.ts": 'export { parse } from "./trec.ts";\n',
  "packages/data/trec.ts": "export function parse(): number {\n  return 1;\n}\n",
  "packages/data/lines.ts": "export const LINES = 1;\n",
  "packages/eval/deno.json": member("@irforge/eval", { ".": "./mod.ts" }),
  "packages/eval/mod.ts": 'import { parse } from "@irforge/data";\nexport const X = parse();\n',
  "apps/viewer/deno.json": member("@irforge/viewer", { ".": "./main.ts" }),
  "apps/viewer/main.ts":
    'import { X } from "@irforge/eval";\nimport { parse } from "@irforge/data/trec";\n' +
    "console.log(X, parse());\n",
  "apps/other/deno.json": member("@irforge/other", { ".": "./main.ts" }),
  "apps/other/main.ts": "export {};\n",
  "tools/report.ts":
    'import { X } from "@irforge/eval";\nimport "@irforge/viewer";\nconsole.log(X);\n',
};

Deno.test("importSites: static imports, re-exports and dynamic imports; not comments or strings", () => {
  const source = [
    "import { a,", // 1
    '  type B } from "./a.ts";', // 2
    'import type { C } from "@irforge/tensor";', // 3
    'import * as d from "./d.ts";', // 4
    'import "./side_effect.ts";', // 5
    'export { e } from "./e.ts";', // 6
    'export * from "./f.ts";', // 7
    'const g = await import("./g.ts");', // 8
    "// import { h } from './h.ts';", // 9
    "/**", // 10
    ' * import { i } from "@irforge/trainer";', // 11
    " */", // 12
    "const text = \"import { j } from './j.ts'\";", // 13
    'const tpl = `import { k } from "./k.ts" ${"x"}`;', // 14
    'const re = /import "\\.\\/l.ts"/;', // 15
    "const ratio = 4 / 2 / 1;", // 16
    'export type { M } from "./m.ts";', // 17
  ].join("\n");
  assert.deepEqual(importSites(source), [
    { specifier: "./a.ts", line: 2 },
    { specifier: "@irforge/tensor", line: 3 },
    { specifier: "./d.ts", line: 4 },
    { specifier: "./side_effect.ts", line: 5 },
    { specifier: "./e.ts", line: 6 },
    { specifier: "./f.ts", line: 7 },
    { specifier: "./g.ts", line: 8 },
    { specifier: "./m.ts", line: 17 },
  ]);
});

Deno.test("checkDeps: a workspace that follows the rules passes", async () => {
  const root = await workspace(BASE);
  try {
    assert.deepEqual(await checkDeps(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkDeps: forbidden edges and internal-file imports fail, one line each", async () => {
  const root = await workspace({
    ...BASE,
    // data → eval is against the direction (data depends on nothing).
    "packages/data/score.ts": 'export {};\nimport { X } from "@irforge/eval";\nconsole.log(X);\n',
    // A relative path into another package's internal file.
    "packages/eval/lines.ts": '// reads lines\nexport { LINES } from "../data/lines.ts";\n',
    // A subpath the data package does not export.
    "packages/eval/other.ts": 'import { LINES } from "@irforge/data/lines";\nconsole.log(LINES);\n',
    // An app importing another app.
    "apps/viewer/extra.ts": 'import "@irforge/other";\n',
    // A package importing an app, even from a test.
    "packages/eval/viewer_test.ts": 'import "@irforge/viewer";\n',
    // A name nobody has.
    "tools/typo.ts": 'import "@irforge/dat";\n',
  });
  try {
    const lines = (await checkDeps(root)).map(formatViolation);
    assert.deepEqual(lines, [
      'apps/viewer/extra.ts:1: import "@irforge/other": app @irforge/viewer may not import an app (@irforge/other)',
      'packages/data/score.ts:2: import "@irforge/eval": package @irforge/data may not depend on @irforge/eval (allowed: no other package)',
      'packages/eval/lines.ts:2: import "../data/lines.ts": relative import of @irforge/data\'s internal file; import "@irforge/data" or a subpath its deno.json exports',
      'packages/eval/other.ts:1: import "@irforge/data/lines": "./lines" is not in the exports of packages/data/deno.json (an internal file)',
      'packages/eval/viewer_test.ts:1: import "@irforge/viewer": package @irforge/eval may not import an app (@irforge/viewer)',
      'tools/typo.ts:1: import "@irforge/dat": no workspace member is named "@irforge/dat"',
    ]);
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 1);
    const out = new TextDecoder().decode(run.stdout).trim().split("\n");
    assert.deepEqual(out.slice(0, -1), lines);
    assert.equal(out.at(-1), "check_deps: 6 import(s) break the dependency rules");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkDeps: a package's tests and CLIs may use any package; its library may not", async () => {
  const root = await workspace({
    ...BASE,
    "packages/data/trec_test.ts": 'import { X } from "@irforge/eval";\nconsole.log(X);\n',
    "packages/data/cli/convert.ts": 'import { X } from "@irforge/eval";\nconsole.log(X);\n',
    "packages/data/convert.ts": 'import { X } from "@irforge/eval";\nconsole.log(X);\n',
  });
  try {
    assert.deepEqual((await checkDeps(root)).map((v) => `${v.file}:${v.line}`), [
      "packages/data/convert.ts:1",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("check_deps: the repository follows its dependency rules", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, repoRoot],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, out);
  assert.match(out, /every import follows the dependency rules/);
});
