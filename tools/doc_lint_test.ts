import assert from "node:assert/strict";
import { docFiles } from "./doc_lint.ts";

Deno.test("docFiles: every member's entry points; examples from non-test sources", async () => {
  const root = await Deno.makeTempDir({ prefix: "irforge_doc_lint_" });
  const files: Record<string, string> = {
    "deno.json": JSON.stringify({ workspace: ["./packages/data", "./apps/viewer"] }),
    "packages/data/deno.json": JSON.stringify({
      name: "@irforge/data",
      exports: { ".": "./mod.ts", "./trec": "./trec.ts" },
    }),
    "packages/data/mod.ts": 'export { parse } from "./trec.ts";\n',
    "packages/data/trec.ts": "/** Parses. */\nexport function parse(): number {\n  return 1;\n}\n",
    "packages/data/lines.ts":
      "/**\n * Splits.\n *\n * @example Two lines\n * ```ts\n * 1;\n * ```\n */\n" +
      "export const LINES = 1;\n",
    "packages/data/fence/block.ts":
      "/**\n * ```ts\n * const x = 1;\n * ```\n */\nexport const X = 1;\n",
    "packages/data/lines_test.ts": "/**\n * @example Not checked\n */\nDeno.test('x', () => {});\n",
    "packages/data/plain.ts": "/** No example; a `code` span only. */\nexport const Y = 1;\n",
    "apps/viewer/deno.json": JSON.stringify({ name: "@irforge/viewer", exports: "./main.ts" }),
    "apps/viewer/main.ts": "console.log(1);\n",
  };
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(`${root}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
      await Deno.writeTextFile(`${root}/${path}`, text);
    }
    assert.deepEqual(await docFiles(root), {
      entryPoints: ["packages/data/mod.ts", "packages/data/trec.ts", "apps/viewer/main.ts"],
      withExamples: [
        "apps/viewer/main.ts",
        "packages/data/fence/block.ts",
        "packages/data/lines.ts",
        "packages/data/mod.ts",
        "packages/data/trec.ts",
      ],
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
