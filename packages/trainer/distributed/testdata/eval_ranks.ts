// Builds the task of the configuration file `--config` (with `--set`s) and evaluates it once,
// untrained: under mpiexec sharded over the ranks, else in one process. Every rank prints
// `RESULT {json}` with the metrics and per-query values it holds afterwards.
//
//   deno run -A eval_ranks.ts --config FILE [--set k=v ...]
import { parseArgs } from "node:util";
import { getDevice } from "@irforge/tensor";
import { buildTask, parseConfig } from "../../mod.ts";
import { DataParallel, launchedByMpi, Mpi } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { config: { type: "string" }, set: { type: "string", multiple: true } },
});
const dp = launchedByMpi() ? new DataParallel(Mpi.init({ timeoutSeconds: 300 })) : undefined;
const rank = dp?.rank ?? 0;
await getDevice();
const path = values.config!;
const config = parseConfig(await Deno.readTextFile(path), path, values.set ?? []);
const lines: string[] = [];
const task = await buildTask(config, { log: (l) => lines.push(l), distributed: dp?.comm });
const outcome = await task.evaluate!();
console.log(`RESULT ${
  JSON.stringify({
    rank,
    metrics: outcome.metrics,
    perQuery: outcome.perQuery ?? null,
    runText: outcome.runText ?? null,
    progress: lines.filter((l) => l.startsWith("eval:")),
  })
}`);
task.dispose();
if (dp) {
  await dp.close();
  Mpi.finalizeIfInitialized();
}
