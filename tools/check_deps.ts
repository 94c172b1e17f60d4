/**
 * Enforces the workspace's dependency rules and prints one line per
 * violation (`file:line: import "specifier": reason`); exits 1 when there is
 * any.
 *
 * - Packages depend one way ({@link ALLOWED_PACKAGE_DEPS}): data → none;
 *   eval → data; losses, model → tensor; trainer → every package. This binds
 *   a package's library files; its programs — tests (`*_test.ts`) and
 *   command-line tools (`cli/`) — sit on top of the library like apps and may
 *   use any package (e.g. `@irforge/data/shared-data` to find test fixtures).
 * - Apps use any package, never another app.
 * - `bench/`, `tools/`, `examples/` use any package or app.
 * - Everyone goes through a public entry point: `@irforge/x` or an
 *   `@irforge/x/sub` subpath listed in x's `deno.json` `exports`. A relative
 *   path into another package or app, or an unlisted subpath, is an import of
 *   an internal file.
 *
 * Comments (JSDoc examples included) and string contents are not imports;
 * only static specifiers of `import`/`export … from`/`import("…")` count.
 *
 * ```sh
 * deno run -A tools/check_deps.ts [repository root]
 * ```
 *
 * @module
 */

/** Which workspace packages each package may import, by directory name under `packages/`. */
export const ALLOWED_PACKAGE_DEPS: Readonly<Record<string, readonly string[]>> = {
  tensor: [],
  data: [],
  eval: ["data"],
  losses: ["tensor"],
  model: ["tensor"],
  trainer: ["tensor", "model", "data", "losses", "eval"],
};

/** A workspace member: a package or an app with its own `deno.json`. */
export interface Member {
  /** `package` (under `packages/`) or `app` (under `apps/`). */
  kind: "package" | "app";
  /** Directory name, e.g. `tensor` or `train`. */
  short: string;
  /** Directory relative to the repository root, e.g. `packages/tensor`. */
  dir: string;
  /** The `name` of its `deno.json`, e.g. `@irforge/tensor`. */
  name: string;
  /** Export keys of its `deno.json` (`.`, `./testing`, …). */
  exports: ReadonlySet<string>;
}

/** One import that breaks a rule. */
export interface Violation {
  /** Importing file, relative to the repository root. */
  file: string;
  /** 1-based line of the specifier. */
  line: number;
  /** The specifier as written. */
  specifier: string;
  /** Which rule it breaks, in one sentence. */
  reason: string;
}

/** Whether `file` (relative to its member's directory) is a test or a command-line program. */
export function isProgramFile(pathInMember: string): boolean {
  return /_test\.ts$/.test(pathInMember) || pathInMember.startsWith("cli/");
}

/** A static import specifier found in a source file. */
export interface ImportSite {
  /** The specifier as written. */
  specifier: string;
  /** 1-based line. */
  line: number;
}

/**
 * Static import specifiers of a TypeScript source: `import … from`, bare
 * `import "…"`, `export … from` and `import("…")` with a string literal.
 * Comments, string and template contents and regular expressions are skipped.
 */
export function importSites(source: string): ImportSite[] {
  const strings: { value: string; line: number }[] = [];
  let masked = "";
  let line = 1;
  let i = 0;
  // Last significant code character, to tell a regex literal from a division.
  let previous = "";
  const n = source.length;
  const advance = (to: number) => {
    for (let k = i; k < to && k < n; k++) if (source[k] === "\n") line++;
    i = to;
  };
  while (i < n) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      advance(end < 0 ? n : end);
      continue;
    }
    if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      advance(end < 0 ? n : end + 2);
      masked += " ";
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let k = i + 1;
      let value = "";
      while (k < n && source[k] !== c && source[k] !== "\n") {
        if (source[k] === "\\") {
          value += source[k + 1] ?? "";
          k += 2;
        } else value += source[k++];
      }
      advance(k + 1);
      masked += ` S${strings.length} `;
      strings.push({ value, line: startLine });
      previous = "S";
      continue;
    }
    if (c === "`") {
      advance(skipTemplate(source, i + 1));
      masked += " T ";
      previous = "T";
      continue;
    }
    if (c === "/" && startsRegex(previous, masked)) {
      advance(skipRegex(source, i + 1));
      masked += " R ";
      previous = "R";
      continue;
    }
    masked += c;
    if (c === "\n") line++;
    if (!/\s/.test(c)) previous = c;
    i++;
  }
  const sites: ImportSite[] = [];
  const patterns = [
    /(?<![\w$.])import\s+(?:type\s+)?[\w$\s{},*]*?\bfrom\s+S(\d+)\b/g,
    /(?<![\w$.])import\s+S(\d+)\b/g,
    /(?<![\w$.])export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[\w$\s,]*\})\s*from\s+S(\d+)\b/g,
    /(?<![\w$.])import\s*\(\s*S(\d+)\s*[,)]/g,
  ];
  for (const pattern of patterns) {
    for (const match of masked.matchAll(pattern)) {
      const literal = strings[Number(match[1])]!;
      sites.push({ specifier: literal.value, line: literal.line });
    }
  }
  return sites.sort((a, b) => a.line - b.line);
}

function skipTemplate(source: string, from: number): number {
  let k = from;
  while (k < source.length) {
    const c = source[k];
    if (c === "\\") k += 2;
    else if (c === "`") return k + 1;
    else if (c === "$" && source[k + 1] === "{") {
      // Skip the embedded expression, counting braces (nested templates included).
      let depth = 1;
      k += 2;
      while (k < source.length && depth > 0) {
        const d = source[k];
        if (d === "`") k = skipTemplate(source, k + 1);
        else if (d === '"' || d === "'") {
          k++;
          while (k < source.length && source[k] !== d && source[k] !== "\n") {
            k += source[k] === "\\" ? 2 : 1;
          }
          k++;
        } else {
          if (d === "{") depth++;
          else if (d === "}") depth--;
          k++;
        }
      }
    } else k++;
  }
  return k;
}

function startsRegex(previous: string, masked: string): boolean {
  if (previous === "" || "(,=:[!&|?{};+-*%<>~^".includes(previous)) return true;
  return /(?:^|[^\w$])(?:return|typeof|case|do|else|in|of|yield|await|void|delete)\s*$/.test(
    masked,
  );
}

function skipRegex(source: string, from: number): number {
  let k = from;
  let inClass = false;
  while (k < source.length && source[k] !== "\n") {
    const c = source[k];
    if (c === "\\") k += 2;
    else {
      if (c === "[") inClass = true;
      else if (c === "]") inClass = false;
      else if (c === "/" && !inClass) return k + 1;
      k++;
    }
  }
  return k;
}

/** Reads the workspace members named in the root `deno.json`. */
export async function readWorkspace(root: string): Promise<Member[]> {
  const rootConfig = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
  const members: Member[] = [];
  for (const entry of rootConfig.workspace ?? []) {
    const dir = String(entry).replace(/^\.\//, "").replace(/\/$/, "");
    const file = `${dir}/deno.json`;
    const config = JSON.parse(await Deno.readTextFile(`${root}/${file}`));
    const kind = dir.startsWith("packages/") ? "package" : dir.startsWith("apps/") ? "app" : null;
    if (kind === null) throw new Error(`${file}: workspace member outside packages/ and apps/`);
    if (typeof config.name !== "string") throw new Error(`${file}: field "name" is missing`);
    const exports = typeof config.exports === "string"
      ? new Set(["."])
      : new Set(Object.keys(config.exports ?? {}));
    members.push({ kind, short: dir.split("/").pop()!, dir, name: config.name, exports });
  }
  return members;
}

function memberOf(members: readonly Member[], file: string): Member | undefined {
  return members.find((m) => file === m.dir || file.startsWith(`${m.dir}/`));
}

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}

/**
 * The violations in one file (`file` relative to the root, `source` its
 * text), given the workspace members.
 */
export function checkFile(members: readonly Member[], file: string, source: string): Violation[] {
  const from = memberOf(members, file);
  const violations: Violation[] = [];
  for (const { specifier, line } of importSites(source)) {
    const flag = (reason: string) => violations.push({ file, line, specifier, reason });
    if (specifier.startsWith("./") || specifier.startsWith("../")) {
      const target = normalize(`${file.split("/").slice(0, -1).join("/")}/${specifier}`);
      const to = memberOf(members, target);
      if (to !== undefined && to !== from) {
        flag(
          `relative import of ${to.name}'s internal file; import "${to.name}" or a subpath its deno.json exports`,
        );
      }
      continue;
    }
    const match = /^@irforge\/([^/]+)(\/.*)?$/.exec(specifier);
    if (match === null) continue;
    const to = members.find((m) => m.name === `@irforge/${match[1]}`);
    if (to === undefined) {
      flag(`no workspace member is named "@irforge/${match[1]}"`);
      continue;
    }
    const subpath = match[2] === undefined ? "." : `.${match[2]}`;
    if (!to.exports.has(subpath)) {
      flag(`"${subpath}" is not in the exports of ${to.dir}/deno.json (an internal file)`);
      continue;
    }
    if (to === from) continue;
    if (from === undefined) continue; // bench/, tools/, examples/: any public API.
    if (to.kind === "app") {
      const who = from.kind === "app" ? "app" : "package";
      flag(`${who} ${from.name} may not import an app (${to.name})`);
      continue;
    }
    if (from.kind === "app" || isProgramFile(file.slice(from.dir.length + 1))) continue;
    const allowed = ALLOWED_PACKAGE_DEPS[from.short];
    if (allowed === undefined) {
      flag(`package ${from.name} has no entry in ALLOWED_PACKAGE_DEPS (tools/check_deps.ts)`);
    } else if (!allowed.includes(to.short)) {
      const list = allowed.length ? allowed.join(", ") : "no other package";
      flag(`package ${from.name} may not depend on ${to.name} (allowed: ${list})`);
    }
  }
  return violations;
}

const SKIP_DIRS = new Set(["node_modules", "runs", ".git", ".deno", ".gl", "results"]);

async function* sourceFiles(root: string, dir = ""): AsyncGenerator<string> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir ? `${root}/${dir}` : root)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith(".")) yield* sourceFiles(root, path);
    } else if (entry.isFile && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name)) {
      yield path;
    }
  }
}

/** Checks every source file under `root` against the workspace's rules. */
export async function checkDeps(root: string): Promise<Violation[]> {
  const members = await readWorkspace(root);
  const violations: Violation[] = [];
  for await (const file of sourceFiles(root)) {
    violations.push(...checkFile(members, file, await Deno.readTextFile(`${root}/${file}`)));
  }
  return violations;
}

/** One line per violation: `file:line: import "specifier": reason`. */
export function formatViolation(v: Violation): string {
  return `${v.file}:${v.line}: import "${v.specifier}": ${v.reason}`;
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const violations = await checkDeps(root);
  for (const v of violations) console.log(formatViolation(v));
  if (violations.length > 0) {
    console.log(`check_deps: ${violations.length} import(s) break the dependency rules`);
    Deno.exit(1);
  }
  console.log("check_deps: every import follows the dependency rules");
}
