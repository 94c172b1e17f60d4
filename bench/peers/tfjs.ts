/**
 * TensorFlow.js (`@tensorflow/tfjs-backend-webgpu` on the `@tensorflow/tfjs`
 * umbrella) on Deno's WebGPU: the matmul shapes and the MLP training step of
 * `workloads.ts`. Writes `bench/results/peers-tfjs-<date>.json`.
 *
 * Why the umbrella and not `@tensorflow/tfjs-core` alone: core's CommonJS
 * bundle (what Deno loads) registers no gradients, and its
 * `dist/register_all_gradients.js` is per-file ESM with extensionless
 * imports (`./gradients/Abs_grad`) that Deno's ESM resolver rejects; the
 * umbrella bundle registers every gradient on the same core instance.
 *
 * Usage: deno run -A bench/peers/tfjs.ts [--full | --shape tiny|full] [--reps N] [--warmup N]
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
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

const FRAMEWORK = "tfjs-webgpu";

if (!(await tf.setBackend("webgpu"))) {
  console.error(
    "peers/tfjs: the tfjs WebGPU backend did not initialise (no WebGPU adapter in this Deno?)",
  );
  Deno.exit(1);
}
await tf.ready();
// The backend's own GPUDevice: waiting on its queue is the sync point.
const backend = tf.backend() as unknown as {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
};
const info = await (await navigator.gpu.requestAdapter())?.info;
const adapter = {
  vendor: info?.vendor ?? "",
  architecture: info?.architecture ?? "",
  description: info?.description ?? "",
};
const cpuAdapter = /llvmpipe|lavapipe|swiftshader|software/i.test(adapter.description);
const args = parseSuiteArgs(
  Deno.args,
  cpuAdapter,
  {},
  cpuAdapter ? { reps: 3, warmup: 1 } : {
    reps: 10,
    warmup: 3,
  },
);
const env = environment(adapter, { cpuAdapter });
console.log(`peers/tfjs ${tf.version.tfjs} · ${describeEnvironment(env)} · shape ${args.shape}`);

/** Submits tfjs's pending commands the way its own readback does, then waits for the queue. */
async function sync(): Promise<void> {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
  await backend.device.queue.onSubmittedWorkDone();
}

const rows: Row[] = [];
for (const [M, K, N] of matmulShapes(args.shape)) {
  const a = tf.tensor2d(lcgArray(M * K, 1, 1), [M, K]);
  const w = tf.tensor2d(lcgArray(N * K, 2, 1), [N, K]);
  const ms = median(
    await timeRepeated(
      async () => {
        tf.matMul(a, w, false, true).dispose();
        await sync();
      },
      args.reps,
      args.warmup,
    ),
  );
  rows.push(matmulRow(FRAMEWORK, tf.version.tfjs, [M, K, N], ms));
  a.dispose();
  w.dispose();
}

{
  const s = mlpShape(args.shape);
  const x = tf.tensor2d(lcgArray(s.batch * s.width, 3, 1), [s.batch, s.width]);
  const target = tf.tensor2d(lcgArray(s.batch * s.width, 4, 1), [s.batch, s.width]);
  const w1 = tf.variable(tf.tensor2d(lcgArray(s.hidden * s.width, 5, 1 / Math.sqrt(s.width)), [
    s.hidden,
    s.width,
  ]));
  const w2 = tf.variable(tf.tensor2d(lcgArray(s.width * s.hidden, 6, 1 / Math.sqrt(s.hidden)), [
    s.width,
    s.hidden,
  ]));
  const optimizer = tf.train.adam(MLP_ADAM.lr, MLP_ADAM.beta1, MLP_ADAM.beta2, MLP_ADAM.eps);
  let last: tf.Scalar | null = null;
  const ms = median(
    await timeRepeated(
      async () => {
        last?.dispose();
        last = optimizer.minimize(
          () => {
            const h = tf.relu(tf.matMul(x, w1, false, true));
            const y = tf.matMul(h, w2, false, true);
            return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
          },
          true,
          [w1, w2],
        );
        await sync();
      },
      args.reps,
      args.warmup,
    ),
  );
  const loss = (await last!.data())[0]!;
  const reference = checkMlpLoss(FRAMEWORK, s, args.warmup + args.reps, loss);
  rows.push({ ...mlpRow(FRAMEWORK, tf.version.tfjs, s, ms, loss), referenceLoss: reference });
}

printRows(rows);
const file = await writeResult({ suite: "peers-tfjs", shape: args.shape, environment: env, rows });
console.log(`wrote ${file}`);
