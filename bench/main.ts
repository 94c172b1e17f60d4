/**
 * `deno task bench`: runs every benchmark suite in turn, each in its own
 * process, at shapes fit for the adapter present (tiny on CPU adapters):
 * the kernel lab, IR metrics and BM25 indexing, and packing. Results are
 * printed; suites that write JSON put it in `bench/results/`.
 *
 * `deno task bench kernels eval` runs only the named suites.
 *
 * @module
 */

const suites: Record<string, string> = {
  kernels: "bench/kernels.ts",
  eval: "bench/eval.ts",
  packing: "bench/packing.ts",
};

const wanted = Deno.args.length > 0 ? Deno.args : Object.keys(suites);
let failed = 0;
for (const name of wanted) {
  const file = suites[name];
  if (!file) {
    console.error(`bench: unknown suite "${name}" (known: ${Object.keys(suites).join(", ")})`);
    Deno.exit(2);
  }
  console.log(`\n== ${name} (${file}) ==`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    console.error(`bench: ${name} exited with code ${status.code}`);
    failed++;
  }
}
Deno.exit(failed === 0 ? 0 : 1);
