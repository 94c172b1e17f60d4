/**
 * `deno task bench`: runs every benchmark suite in turn, each in its own
 * process, at shapes fit for the adapter present (tiny on CPU adapters):
 * the kernel lab, IR metrics and BM25 indexing, packing, fused attention,
 * the `mistral-small` step, the 7B-shaped LoRA step, and the peers
 * (irforge, TensorFlow.js, jax-js on the same workloads). Results are
 * printed; suites that write JSON put it in `bench/results/`
 * (`deno run -A bench/compare.ts` turns them into tables).
 *
 * `deno task bench kernels eval` runs only the named suites; flags after
 * `--` go to every suite named, which must understand them
 * (`deno task bench attention model_step lora_step -- --full`).
 *
 * `--provider deno,dawn` (before `--`) runs every GPU suite once per WebGPU
 * provider (`IRFORGE_WEBGPU` of the child), so the two can be compared in
 * one sitting; the default is the process's own choice (`auto`).
 *
 * @module
 */

const suites: Record<string, string> = {
  kernels: "bench/kernels.ts",
  eval: "bench/eval.ts",
  packing: "bench/packing.ts",
  attention: "bench/attention.ts",
  model_step: "bench/model_step.ts",
  lora_step: "bench/lora_step.ts",
  "peers-irforge": "bench/peers/irforge.ts",
  "peers-tfjs": "bench/peers/tfjs.ts",
  "peers-jax": "bench/peers/jax.ts",
};

// Suites that never touch WebGPU run once whatever --provider says.
const gpuFree = new Set(["eval", "packing"]);

const dashDash = Deno.args.indexOf("--");
const ours = dashDash < 0 ? Deno.args : Deno.args.slice(0, dashDash);
const suiteFlags = dashDash < 0 ? [] : Deno.args.slice(dashDash + 1);
const providers: (string | undefined)[] = [undefined];
const names: string[] = [];
for (let i = 0; i < ours.length; i++) {
  const arg = ours[i]!;
  const value = arg === "--provider"
    ? ours[++i]
    : arg.startsWith("--provider=")
    ? arg.slice(11)
    : null;
  if (value === null) {
    names.push(arg);
    continue;
  }
  const list = (value ?? "").split(",").map((p) => p.trim());
  if (list.length === 0 || list.some((p) => !["auto", "deno", "dawn"].includes(p))) {
    console.error(`bench: --provider takes auto, deno or dawn (comma-separated), got "${value}"`);
    Deno.exit(2);
  }
  providers.splice(0, providers.length, ...list);
}
const wanted = names.length > 0 ? names : Object.keys(suites);
let failed = 0;
for (const name of wanted) {
  for (const provider of gpuFree.has(name) ? [undefined] : providers) {
    const file = suites[name];
    if (!file) {
      console.error(`bench: unknown suite "${name}" (known: ${Object.keys(suites).join(", ")})`);
      Deno.exit(2);
    }
    const env: Record<string, string> = {
      XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
    };
    if (provider) env.IRFORGE_WEBGPU = provider;
    console.log(`\n== ${name} (${file})${provider ? ` · provider ${provider}` : ""} ==`);
    const status = await new Deno.Command(Deno.execPath(), {
      // The peers' npm packages (tfjs, jax-js) stay out of deno.lock so that a
      // fresh test run never downloads them.
      args: [
        "run",
        "-A",
        ...(file.startsWith("bench/peers/") ? ["--no-lock"] : []),
        file,
        ...suiteFlags,
      ],
      env,
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) {
      console.error(
        `bench: ${name}${provider ? ` (${provider})` : ""} exited with code ${status.code}`,
      );
      failed++;
    }
  }
}
Deno.exit(failed === 0 ? 0 : 1);
