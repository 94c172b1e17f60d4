// Trains the distill recipe (both phases) on the default synthetic collection with a
// random-init teacher and the given `--set`s: under mpiexec data-parallel (one rank each),
// else in one process. Rank 0 writes the student's parameters (name order, f32) to
// `--out`/params.f32 and every rank prints `RESULT {json}` with each phase's losses.
//
//   deno run -A distill_ranks.ts --out DIR [--set k=v ...]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import {
  DEFAULT_CONFIG_PATH,
  DEFAULT_DIR,
  distillTasks,
  parseConfig,
  trainDistill,
} from "../../mod.ts";
import { DataParallel, launchedByMpi, leaveDataParallel, Mpi } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string" }, set: { type: "string", multiple: true } },
});
const out = values.out!;
const dp = launchedByMpi() ? new DataParallel(Mpi.init({ timeoutSeconds: 120 })) : undefined;
const rank = dp?.rank ?? 0;
await getDevice();
const text = (await Deno.readTextFile(DEFAULT_CONFIG_PATH))
  .replaceAll("$DEFAULT_DIR", DEFAULT_DIR)
  .replace("recipe: biencoder", "recipe: distill");
const config = parseConfig(text, DEFAULT_CONFIG_PATH, [
  `model.teacher_model_name_or_path=random-init:${DEFAULT_DIR}/tiny-llama`,
  `data.data_path=${DEFAULT_DIR}/data/corpus.jsonl`,
  "training.logging_steps=1",
  "training.save_strategy=no",
  "training.eval_strategy=no",
  "training.warmup_steps=0",
  "training.lr_scheduler_type=linear",
  ...(values.set ?? []),
]);
const tasks = await distillTasks(config, { log: () => {}, distributed: dp?.comm });
const result = await trainDistill({
  config,
  tasks,
  runPath: join(out, "run"),
  log: () => {},
  progress: false,
  handleSignals: false,
  distributed: dp,
});
const names = [...tasks.student.parameters.keys()].sort();
const arrays = [];
for (const name of names) {
  arrays.push(await tasks.student.parameters.get(name)!.toArray() as Float32Array);
}
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
    runPath: result.runPath,
    phase1: result.phase1?.losses ?? null,
    phase2: result.phase2?.losses ?? null,
    error: (result.phase2 ?? result.phase1)?.error?.message ?? null,
    names,
    sizes: arrays.map((a) => a.length),
    stepBytes: dp?.lastStepBytes ?? 0,
  })
}`);
tasks.dispose();
const last = result.phase2 ?? result.phase1;
if (dp && last) await leaveDataParallel(dp, last);
