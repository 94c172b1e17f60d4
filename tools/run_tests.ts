/**
 * Runs the whole test suite with `deno test` and ends with the plain summary
 * line CI reads: `N passed, N failed` (plus `, N skipped`).
 *
 * Extra arguments are passed to `deno test` (e.g. a path or `--filter`).
 *
 * With `IRFORGE_TEST_DAWN` set to paths (e.g. `packages/tensor
 * !packages/tensor/attention`, as `.ci/run` does; `!` excludes a path), those
 * tests run a second time under Dawn (`IRFORGE_WEBGPU=dawn`) after the main
 * pass, when Dawn yields an adapter here; the last line then sums both passes.
 *
 * @module
 */

import { loadDawn } from "@irforge/tensor";

/** Counts from one `deno test` run. */
interface PassResult {
  passed: number;
  failed: number;
  ignored: number;
  code: number;
  /** Whether deno test printed its summary. */
  summarized: boolean;
}

async function denoTest(args: string[], extraEnv: Record<string, string>): Promise<PassResult> {
  const env: Record<string, string> = { ...extraEnv };
  // Mesa's GL path warns on every start without it; point it at /tmp.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) env.XDG_RUNTIME_DIR = "/tmp";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check=remote", ...args],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let tail = "";
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4000);
  }
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

/** Why Dawn cannot run tests here, or `null` when it yields an adapter. */
async function dawnUnavailable(): Promise<string | null> {
  const dawn = await loadDawn();
  if ("error" in dawn) return `npm:webgpu does not load (${dawn.error})`;
  const adapter = await dawn.gpu.requestAdapter().catch(() => null);
  return adapter ? null : "Dawn finds no adapter (lavapipe needs Mesa ≥ 25)";
}

const main = await denoTest(Deno.args, {});
if (!main.summarized) {
  console.log(`deno test exited with code ${main.code} before its summary`);
}
let total = main;
const dawnPaths = (Deno.env.get("IRFORGE_TEST_DAWN") ?? "").split(/\s+/).filter((p) => p !== "");
if (dawnPaths.length > 0) {
  console.log(`main pass: ${summary(main)}`);
  const why = await dawnUnavailable();
  if (why) {
    console.log(`dawn pass skipped: ${why}`);
  } else {
    const t0 = performance.now();
    const args = dawnPaths.map((p) => p.startsWith("!") ? `--ignore=${p.slice(1)}` : p);
    const dawn = await denoTest(args, { IRFORGE_WEBGPU: "dawn" });
    console.log(
      `dawn pass (${dawnPaths.join(" ")}, ${((performance.now() - t0) / 1000).toFixed(0)} s): ${
        summary(dawn)
      }`,
    );
    total = {
      passed: main.passed + dawn.passed,
      failed: main.failed + dawn.failed,
      ignored: main.ignored + dawn.ignored,
      code: main.code || dawn.code,
      summarized: main.summarized && dawn.summarized,
    };
  }
}
console.log(summary(total));
Deno.exit(total.code);
