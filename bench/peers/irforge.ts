/**
 * irforge's own engine (`@irforge/tensor`) on the peers' workloads
 * (`workloads.ts`), timed the same way as `tfjs.ts` and `jax.ts` (wall clock
 * to `syncGpu()`, median), so the three sit side by side in one sitting.
 * The MLP step: `linear` (y = x·Wᵀ), relu, mean squared error, backward,
 * AdamW with weight decay 0 (= Adam). Writes
 * `bench/results/peers-irforge-<date>.json`.
 *
 * Usage: deno run -A bench/peers/irforge.ts [--full | --shape tiny|full] [--reps N] [--warmup N]
 *
 * @module
 */

import {
  AdamW,
  backward,
  linear,
  matmul,
  mean,
  mul,
  noGrad,
  relu,
  sub,
  syncGpu,
  type Tensor,
  tensor,
  tidy,
  variable,
} from "@irforge/tensor";
import { openDevice } from "../lib/device.ts";
import {
  describeEnvironment,
  environment,
  median,
  parseSuiteArgs,
  printRows,
  type Row,
  timeRepeated,
  writeResult,
} from "../lib/report.ts";
import { checkMlpLoss, MLP_ADAM } from "./mlp_reference.ts";
import { lcgArray, matmulRow, matmulShapes, mlpRow, mlpShape } from "./workloads.ts";

const FRAMEWORK = "irforge";
const VERSION = JSON.parse(
  await Deno.readTextFile(new URL("../../packages/tensor/deno.json", import.meta.url)),
).version as string;

const device = await openDevice();
const args = parseSuiteArgs(
  Deno.args,
  device.isCpuAdapter,
  {},
  device.isCpuAdapter ? { reps: 3, warmup: 1 } : { reps: 10, warmup: 3 },
);
const env = environment(device.adapter, {
  cpuAdapter: device.isCpuAdapter,
  timestamps: device.hasTimestamps,
});
console.log(`peers/irforge ${VERSION} · ${describeEnvironment(env)} · shape ${args.shape}`);

const rows: Row[] = [];
for (const [M, K, N] of matmulShapes(args.shape)) {
  const a = tensor(lcgArray(M * K, 1, 1), [M, K]).keep();
  const w = tensor(lcgArray(N * K, 2, 1), [N, K]).keep();
  const ms = median(
    await timeRepeated(
      async () => {
        noGrad(() => tidy(() => void matmul(a, w, { transB: true })));
        await syncGpu();
      },
      args.reps,
      args.warmup,
    ),
  );
  rows.push(matmulRow(FRAMEWORK, VERSION, [M, K, N], ms));
  a.dispose();
  w.dispose();
}

{
  const s = mlpShape(args.shape);
  const x = tensor(lcgArray(s.batch * s.width, 3, 1), [s.batch, s.width]).keep();
  const target = tensor(lcgArray(s.batch * s.width, 4, 1), [s.batch, s.width]).keep();
  const w1 = variable(
    tensor(lcgArray(s.hidden * s.width, 5, 1 / Math.sqrt(s.width)), [s.hidden, s.width]).keep(),
  );
  const w2 = variable(
    tensor(lcgArray(s.width * s.hidden, 6, 1 / Math.sqrt(s.hidden)), [s.width, s.hidden]).keep(),
  );
  const optimizer = new AdamW([w1, w2], {
    beta1: MLP_ADAM.beta1,
    beta2: MLP_ADAM.beta2,
    eps: MLP_ADAM.eps,
    weightDecay: 0,
  });
  let last: Tensor | null = null;
  const ms = median(
    await timeRepeated(
      async () => {
        last?.dispose();
        last = tidy(() => {
          const y = linear(relu(linear(x, w1)), w2);
          const r = sub(y, target);
          const loss = mean(mul(r, r));
          backward(loss);
          return loss;
        });
        optimizer.step(MLP_ADAM.lr);
        optimizer.zeroGrad();
        await syncGpu();
      },
      args.reps,
      args.warmup,
    ),
  );
  const loss = (await last!.toArray())[0]!;
  const reference = checkMlpLoss(FRAMEWORK, s, args.warmup + args.reps, loss);
  rows.push({ ...mlpRow(FRAMEWORK, VERSION, s, ms, loss), referenceLoss: reference });
  for (const t of [x, target, w1, w2, last!]) t.dispose();
  optimizer.dispose();
}

printRows(rows);
const file = await writeResult({
  suite: "peers-irforge",
  shape: args.shape,
  environment: env,
  rows,
});
console.log(`wrote ${file}`);
