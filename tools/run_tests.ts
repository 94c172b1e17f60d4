/**
 * Runs the whole test suite with `deno test` and ends with the plain summary
 * line CI reads: `N passed, N failed` (plus `, N skipped`).
 *
 * Extra arguments are passed to `deno test` (e.g. a path or `--filter`).
 *
 * @module
 */

const env: Record<string, string> = {};
// Mesa's GL path warns on every start without it; point it at /tmp.
if (!Deno.env.get("XDG_RUNTIME_DIR")) env.XDG_RUNTIME_DIR = "/tmp";

const command = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--no-check=remote", ...Deno.args],
  env,
  stdout: "piped",
  stderr: "inherit",
});
const child = command.spawn();
const decoder = new TextDecoder();
let tail = "";
for await (const chunk of child.stdout) {
  const text = decoder.decode(chunk, { stream: true });
  await Deno.stdout.write(chunk);
  tail = (tail + text).slice(-4000);
}
const status = await child.status;

// Deno prints e.g. "ok | 12 passed (3 steps) | 0 failed | 2 ignored (1s)".
// deno-lint-ignore no-control-regex
const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
const match = plain.match(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/);
if (match) {
  const [, passed, failed, ignored] = match;
  const skipped = ignored && ignored !== "0" ? `, ${ignored} skipped` : "";
  console.log(`${passed} passed, ${failed} failed${skipped}`);
} else {
  console.log(`0 passed, 1 failed (deno test exited with code ${status.code} before its summary)`);
}
Deno.exit(status.code);
