/**
 * Runs the whole test suite with `deno test` and ends with the plain summary
 * line CI reads: `N passed, N failed` (plus `, N skipped`).
 *
 * Extra arguments are passed to `deno test` (e.g. a path or `--filter`).
 *
 * With `IRFORGE_TEST_DAWN` set (one line per pass: test paths, `!path` to
 * exclude one, `NAME=VALUE` for that pass's environment; see
 * `dawn_passes.ts` and `.ci/run`), those tests run again under Dawn
 * (`IRFORGE_WEBGPU=dawn`) when Dawn yields an adapter here: beside the main
 * pass (their output printed after its output; `IRFORGE_TEST_SEQUENTIAL=1`
 * starts them after it instead); the last line then sums all passes.
 * `IRFORGE_DAWN_ICD` names a Vulkan ICD file for the Dawn pass only (CI's
 * side-by-side Mesa 25 lavapipe, which Dawn accepts and bookworm's 22.3 is
 * not): that pass gets `VK_ICD_FILENAMES` and the driver's directory first in
 * `LD_LIBRARY_PATH`, and Dawn is probed in a child process with the same
 * environment.
 *
 * @module
 */

import { dirname } from "node:path";
import { type DawnPass, parseDawnPasses } from "./dawn_passes.ts";

/** Counts from one `deno test` run. */
interface PassResult {
  passed: number;
  failed: number;
  ignored: number;
  code: number;
  /** Whether deno test printed its summary. */
  summarized: boolean;
}

/**
 * Runs `deno test` with `args`. Its output streams to ours, or, with
 * `collect`, is kept there (stdout and stderr in arrival order) for a pass
 * that runs beside another and prints afterwards.
 */
async function denoTest(
  args: string[],
  extraEnv: Record<string, string>,
  collect?: Uint8Array[],
): Promise<PassResult> {
  const env: Record<string, string> = { ...extraEnv };
  // Mesa's GL path warns on every start without it; point it at /tmp.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) env.XDG_RUNTIME_DIR = "/tmp";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check=remote", ...args],
    env,
    stdout: "piped",
    stderr: collect ? "piped" : "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let tail = "";
  const readStdout = (async () => {
    for await (const chunk of child.stdout) {
      if (collect) collect.push(chunk);
      else await Deno.stdout.write(chunk);
      tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4000);
    }
  })();
  const readStderr = collect
    ? (async () => {
      for await (const chunk of child.stderr) collect.push(chunk);
    })()
    : Promise.resolve();
  await Promise.all([readStdout, readStderr]);
  const status = await child.status;
  // Deno prints e.g. "ok | 12 passed (3 steps) | 0 failed | 2 ignored (1s)".
  // deno-lint-ignore no-control-regex
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
  const match = plain.match(
    /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/,
  );
  if (!match) return { passed: 0, failed: 1, ignored: 0, code: status.code, summarized: false };
  return {
    passed: Number(match[1]),
    failed: Number(match[2]),
    ignored: Number(match[3] ?? 0),
    code: status.code,
    summarized: true,
  };
}

function summary(r: Pick<PassResult, "passed" | "failed" | "ignored">): string {
  return `${r.passed} passed, ${r.failed} failed${r.ignored > 0 ? `, ${r.ignored} skipped` : ""}`;
}

/** The environment of the Dawn pass (see the module docs). */
function dawnEnv(): Record<string, string> {
  const env: Record<string, string> = { IRFORGE_WEBGPU: "dawn" };
  const icd = Deno.env.get("IRFORGE_DAWN_ICD");
  if (!icd) return env;
  env.VK_ICD_FILENAMES = icd;
  try {
    const library = JSON.parse(Deno.readTextFileSync(icd)).ICD.library_path as string;
    const ld = Deno.env.get("LD_LIBRARY_PATH");
    env.LD_LIBRARY_PATH = ld ? `${dirname(library)}:${ld}` : dirname(library);
  } catch (e) {
    console.log(`IRFORGE_DAWN_ICD ${icd}: ${(e as Error).message}`);
  }
  return env;
}

// Run in a child: LD_LIBRARY_PATH is read when a process starts.
const PROBE = `import { loadDawn } from "@irforge/tensor";
const dawn = await loadDawn();
if ("error" in dawn) console.log("npm:webgpu does not load (" + dawn.error + ")");
else if (!(await dawn.gpu.requestAdapter().catch(() => null))) {
  console.log("Dawn finds no adapter (lavapipe needs Mesa >= 25)");
} else console.log("ok");`;

/** Why Dawn cannot run tests here, or `null` when it yields an adapter. */
async function dawnUnavailable(env: Record<string, string>): Promise<string | null> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", PROBE],
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  const said = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (said === "ok") return null;
  return said || `the Dawn probe exited with code ${out.code}`;
}

/** The Dawn passes, one after another, their output kept in `collect`; lines to print after. */
async function runDawnPasses(
  passes: DawnPass[],
  collect: Uint8Array[],
): Promise<{ lines: string[]; results: PassResult[] }> {
  const env = dawnEnv();
  const why = await dawnUnavailable(env);
  if (why) return { lines: [`dawn passes skipped: ${why}`], results: [] };
  const lines: string[] = [], results: PassResult[] = [];
  for (const pass of passes) {
    const t0 = performance.now();
    const result = await denoTest(pass.args, { ...env, ...pass.env }, collect);
    lines.push(
      `dawn pass (${pass.label}, ${((performance.now() - t0) / 1000).toFixed(0)} s): ${
        summary(result)
      }`,
    );
    if (!result.summarized) {
      lines.push(`deno test exited with code ${result.code} before its summary`);
    }
    results.push(result);
  }
  return { lines, results };
}

const dawnPasses = parseDawnPasses(Deno.env.get("IRFORGE_TEST_DAWN"));
// The Dawn passes run beside the main pass (each keeps about one core busy: deno test runs files
// one at a time, and lavapipe compiles a pipeline on one thread); their output is kept and
// printed after the main pass's. IRFORGE_TEST_SEQUENTIAL=1 starts them after the main pass.
const dawnOutput: Uint8Array[] = [];
const sequential = Deno.env.get("IRFORGE_TEST_SEQUENTIAL") === "1";
const startDawn = () => runDawnPasses(dawnPasses, dawnOutput);
const early = dawnPasses.length > 0 && !sequential ? startDawn() : undefined;
const main = await denoTest(Deno.args, {});
if (!main.summarized) {
  console.log(`deno test exited with code ${main.code} before its summary`);
}
let total = main;
if (dawnPasses.length > 0) {
  console.log(`main pass: ${summary(main)}`);
  const dawn = await (early ?? startDawn());
  for (const chunk of dawnOutput) await Deno.stdout.write(chunk);
  for (const line of dawn.lines) console.log(line);
  for (const result of dawn.results) {
    total = {
      passed: total.passed + result.passed,
      failed: total.failed + result.failed,
      ignored: total.ignored + result.ignored,
      code: total.code || result.code,
      summarized: total.summarized && result.summarized,
    };
  }
}
console.log(summary(total));
Deno.exit(total.code);
