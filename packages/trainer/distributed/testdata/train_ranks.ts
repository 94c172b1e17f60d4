// Trains a recipe on the default synthetic collection with the given `--set`s: under mpiexec
// data-parallel (one rank each), else in one process. Rank 0 writes the trained parameters
// (name order, f32) to `--out`/params.f32 and every rank prints `RESULT {json}`.
//
//   deno run -A train_ranks.ts --recipe crossencoder --out DIR [--set k=v ...]
//     [--interrupt-after N] [--resume DIR] [--fail-rank R --fail-step S]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import { buildTask, DEFAULT_CONFIG_PATH, DEFAULT_DIR, parseConfig, train } from "../../mod.ts";
import { DataParallel, launchedByMpi, leaveDataParallel, Mpi } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    recipe: { type: "string", default: "crossencoder" },
    out: { type: "string" },
    set: { type: "string", multiple: true },
    "interrupt-after": { type: "string" },
    resume: { type: "string" },
    "fail-rank": { type: "string" },
    "fail-step": { type: "string" },
  },
});
const out = values.out!;
const dp = launchedByMpi() ? new DataParallel(Mpi.init({ timeoutSeconds: 120 })) : undefined;
const rank = dp?.rank ?? 0;
console.log(`PID ${rank} ${Deno.pid}`);
await getDevice();
const text = (await Deno.readTextFile(DEFAULT_CONFIG_PATH))
  .replaceAll("$DEFAULT_DIR", DEFAULT_DIR)
  .replace("recipe: biencoder", `recipe: ${values.recipe}`);
const config = parseConfig(text, DEFAULT_CONFIG_PATH, [
  `training.output_dir=${out}`,
  "training.logging_steps=1",
  "training.save_strategy=no",
  "training.eval_strategy=no",
  "training.warmup_steps=0",
  "training.lr_scheduler_type=linear",
  ...(values.set ?? []),
]);
const task = await buildTask(config, { log: () => {}, distributed: dp?.comm });
if (values["fail-rank"] !== undefined && Number(values["fail-rank"]) === rank) {
  // A rank whose forward pass throws at micro-batch call `fail-step` (counting from 1).
  const inner = task.microBatch.bind(task);
  let calls = 0;
  task.microBatch = (epoch, index, rng) => {
    if (++calls === Number(values["fail-step"])) {
      throw new Error(`injected failure on rank ${rank}`);
    }
    return inner(epoch, index, rng);
  };
}
const result = await train({
  config,
  task,
  log: () => {},
  progress: false,
  handleSignals: false,
  distributed: dp,
  resume: values.resume ?? null,
  runPath: values.resume ? undefined : join(out, "run"),
  interruptAfterStep: values["interrupt-after"] ? Number(values["interrupt-after"]) : undefined,
});
const names = [...task.parameters.keys()].sort();
const arrays = [];
for (const name of names) arrays.push(await task.parameters.get(name)!.toArray() as Float32Array);
if (rank === 0) {
  const all = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const a of arrays) all.set(a, at), at += a.length;
  await Deno.writeFile(join(out, "params.f32"), new Uint8Array(all.buffer));
}
console.log(`RESULT ${
  JSON.stringify({
    rank,
    status: result.status,
    step: result.step,
    runPath: result.runPath,
    losses: result.losses,
    error: result.error?.message ?? null,
    names,
    sizes: arrays.map((a) => a.length),
    stepBytes: dp?.lastStepBytes ?? 0,
  })
}`);
task.dispose();
if (dp) await leaveDataParallel(dp, result);
