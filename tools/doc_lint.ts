/**
 * Checks the documentation of every workspace member's public API:
 *
 * 1. `deno doc --lint` over every entry point in every member's `deno.json`
 *    `exports`, all in one run (so a type that one package exports counts as
 *    public when another package's API refers to it, as it would for a
 *    published dependency);
 * 2. `deno check --doc` over those entry points and every other non-test
 *    source file of a member whose JSDoc has an `@example` or a code block,
 *    so the examples keep type-checking.
 *
 * Exits 1 when either fails. `--list` prints the two file lists instead.
 *
 * ```sh
 * deno run -A tools/doc_lint.ts [--list]
 * ```
 *
 * @module
 */

import { readWorkspace } from "./check_deps.ts";

/** Files the two checks read, relative to the repository root. */
export interface DocFiles {
  /** Every entry point of every member (`deno doc --lint`). */
  entryPoints: string[];
  /** Entry points plus non-test sources with JSDoc examples (`deno check --doc`). */
  withExamples: string[];
}

const EXAMPLE = /^\s*\*\s*(?:@example\b|```(?:ts|typescript)?\s*$)/m;

async function* memberSources(root: string, dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${root}/${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && !entry.name.startsWith(".") && entry.name !== "node_modules") {
      yield* memberSources(root, path);
    } else if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      yield path;
    }
  }
}

/** The entry points and example-bearing files of the workspace under `root`. */
export async function docFiles(root: string): Promise<DocFiles> {
  const entryPoints: string[] = [];
  const examples = new Set<string>();
  for (const member of await readWorkspace(root)) {
    const config = JSON.parse(await Deno.readTextFile(`${root}/${member.dir}/deno.json`));
    const targets: string[] = typeof config.exports === "string"
      ? [config.exports]
      : Object.values(config.exports ?? {}).map(String);
    for (const target of targets) entryPoints.push(`${member.dir}/${target.replace(/^\.\//, "")}`);
    for await (const file of memberSources(root, member.dir)) {
      if (EXAMPLE.test(await Deno.readTextFile(`${root}/${file}`))) examples.add(file);
    }
  }
  const withExamples = [...new Set([...entryPoints, ...examples])].sort();
  return { entryPoints, withExamples };
}

async function deno(root: string, args: string[]): Promise<boolean> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return code === 0;
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const files = await docFiles(root);
  if (Deno.args.includes("--list")) {
    console.log(`deno doc --lint:\n  ${files.entryPoints.join("\n  ")}`);
    console.log(`deno check --doc:\n  ${files.withExamples.join("\n  ")}`);
    Deno.exit(0);
  }
  const linted = await deno(root, ["doc", "--lint", ...files.entryPoints]);
  console.log(
    linted
      ? `doc_lint: ${files.entryPoints.length} entry points: no documentation lint errors`
      : "doc_lint: deno doc --lint failed (above)",
  );
  const checked = await deno(root, ["check", "--doc", ...files.withExamples]);
  console.log(
    checked
      ? `doc_lint: the examples of ${files.withExamples.length} files type-check`
      : "doc_lint: deno check --doc failed (above)",
  );
  if (!linted || !checked) Deno.exit(1);
}
