/**
 * What one data-parallel optimizer step all-reduces for a distill config,
 * and what the all-reduce costs here: run under `mpiexec -np N`; each phase
 * trains `--steps` steps (no evaluation, no checkpoints) and rank 0 prints
 * the packed buffer's size and the median time of `DataParallel.reduceStep`
 * (read-back of the gradients from the GPU, `MPI_Allreduce`, upload).
 *
 * ```sh
 * mpiexec -np 2 deno run -A packages/trainer/distributed/step_bytes_bench.ts \
 *   --config examples/distill-scifact.yaml --set data.run_path=null
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import { distillTasks, loadConfig, trainDistill } from "../mod.ts";
import { DataParallel, Mpi } from "./mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    config: { type: "string" },
    set: { type: "string", multiple: true },
    steps: { type: "string", default: "4" },
  },
});
const dp = new DataParallel(Mpi.init({ timeoutSeconds: 600 }));
await getDevice();
const out = await Deno.makeTempDir({ prefix: "irforge-step-bytes-" });
const steps = Number(values.steps);
const config = await loadConfig(values.config!, [
  ...(values.set ?? []),
  ...["phase1", "phase2"].flatMap((p) => [
    `${p}.max_steps=${steps}`,
    `${p}.eval_strategy=no`,
    `${p}.save_strategy=no`,
  ]),
]);
const times: number[] = [];
const reduce = dp.reduceStep.bind(dp);
dp.reduceStep = async (input) => {
  const started = performance.now();
  const totals = await reduce(input);
  times.push(performance.now() - started);
  return totals;
};
const tasks = await distillTasks(config, { log: () => {}, distributed: dp.comm });
await trainDistill({
  config,
  tasks,
  runPath: join(out, "run"),
  log: () => {},
  progress: false,
  handleSignals: false,
  distributed: dp,
});
const parameters = [...tasks.student.parameters.values()].reduce((a, p) => a + p.size, 0);
tasks.dispose();
if (dp.leader) {
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `${dp.size} ranks: ${parameters} trainable values, ${dp.lastStepBytes} bytes ` +
      `(${(dp.lastStepBytes / 1e6).toFixed(3)} MB) per step; reduceStep median ` +
      `${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} ms over ${times.length} steps ` +
      `(min ${sorted[0]!.toFixed(2)}, max ${sorted.at(-1)!.toFixed(2)})`,
  );
  await Deno.remove(out, { recursive: true });
}
await dp.close();
Mpi.finalizeIfInitialized();
