/**
 * jax-js (`@jax-js/jax`) on Deno's WebGPU: the matmul shapes and the MLP
 * training step of `workloads.ts`, the step as one `jit` of `valueAndGrad`
 * plus Adam written out (jax-js keeps its optimisers in a separate package).
 * Writes `bench/results/peers-jax-<date>.json`.
 *
 * jax-js arrays are reference-counted: every function consumes its
 * arguments, `.ref` adds a reference (see the package README).
 *
 * Usage: deno run -A bench/peers/jax.ts [--full | --shape tiny|full] [--reps N] [--warmup N]
 *
 * @module
 */

import {
  type Array as JaxArray,
  blockUntilReady,
  defaultDevice,
  init,
  jit,
  nn,
  numpy as np,
  valueAndGrad,
} from "npm:@jax-js/jax@0.1.25";
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

const FRAMEWORK = "jax-js-webgpu";
const VERSION =
  import.meta.resolve("npm:@jax-js/jax@0.1.25").match(/jax-js\/jax[@/](\d[^/]*)/)?.[1] ??
    "unknown";

const devices = await init();
if (!devices.includes("webgpu")) {
  console.error(
    `peers/jax: jax-js found no WebGPU device (devices: ${devices.join(", ")}); ` +
      "it needs navigator.gpu with an adapter",
  );
  Deno.exit(1);
}
defaultDevice("webgpu");
const info = (await navigator.gpu.requestAdapter())?.info;
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
console.log(`peers/jax ${VERSION} · ${describeEnvironment(env)} · shape ${args.shape}`);

function matrix(rows: number, cols: number, seed: number, bound: number): JaxArray {
  return np.array(lcgArray(rows * cols, seed, bound) as Float32Array<ArrayBuffer>).reshape([
    rows,
    cols,
  ]);
}

const rows: Row[] = [];
const matmulT = jit((a: JaxArray, w: JaxArray) => np.matmul(a, w.transpose()));
for (const [M, K, N] of matmulShapes(args.shape)) {
  const a = matrix(M, K, 1, 1), w = matrix(N, K, 2, 1);
  const ms = median(
    await timeRepeated(
      async () => {
        const c = matmulT(a.ref, w.ref);
        await blockUntilReady(c);
        c.dispose();
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
  type Params = { w1: JaxArray; w2: JaxArray };
  const lossOf = (p: Params, x: JaxArray, target: JaxArray) => {
    const h = nn.relu(np.matmul(x, p.w1.transpose()));
    const y = np.matmul(h, p.w2.transpose());
    return np.mean(np.square(y.sub(target)));
  };
  const { lr, beta1: b1, beta2: b2, eps } = MLP_ADAM;
  // Adam written out; the bias corrections come in as arrays c1 = 1−β₁ᵗ, c2 = 1−β₂ᵗ.
  const step = jit(
    (
      p: Params,
      m: Params,
      v: Params,
      x: JaxArray,
      target: JaxArray,
      c1: JaxArray,
      c2: JaxArray,
    ) => {
      const [loss, g] = valueAndGrad(lossOf)({ w1: p.w1.ref, w2: p.w2.ref }, x, target);
      const m1 = m.w1.mul(b1).add(g.w1.ref.mul(1 - b1));
      const v1 = v.w1.mul(b2).add(g.w1.ref.mul(g.w1).mul(1 - b2));
      const m2 = m.w2.mul(b1).add(g.w2.ref.mul(1 - b1));
      const v2 = v.w2.mul(b2).add(g.w2.ref.mul(g.w2).mul(1 - b2));
      const upd = (mm: JaxArray, vv: JaxArray, a: JaxArray, b: JaxArray) =>
        mm.mul(lr).div(a).div(np.sqrt(vv.div(b)).add(eps));
      const w1 = p.w1.sub(upd(m1.ref, v1.ref, c1.ref, c2.ref));
      const w2 = p.w2.sub(upd(m2.ref, v2.ref, c1, c2));
      return { loss, p: { w1, w2 }, m: { w1: m1, w2: m2 }, v: { w1: v1, w2: v2 } };
    },
  );
  const x = matrix(s.batch, s.width, 3, 1), target = matrix(s.batch, s.width, 4, 1);
  let p: Params = {
    w1: matrix(s.hidden, s.width, 5, 1 / Math.sqrt(s.width)),
    w2: matrix(s.width, s.hidden, 6, 1 / Math.sqrt(s.hidden)),
  };
  let m: Params = { w1: np.zeros([s.hidden, s.width]), w2: np.zeros([s.width, s.hidden]) };
  let v: Params = { w1: np.zeros([s.hidden, s.width]), w2: np.zeros([s.width, s.hidden]) };
  let t = 0;
  let loss: JaxArray | null = null;
  const ms = median(
    await timeRepeated(
      async () => {
        t++;
        const out = step(
          p,
          m,
          v,
          x.ref,
          target.ref,
          np.array([1 - b1 ** t]),
          np.array([1 - b2 ** t]),
        );
        await blockUntilReady(out);
        loss?.dispose();
        ({ loss, p, m, v } = out);
      },
      args.reps,
      args.warmup,
    ),
  );
  const lossValue = (await loss!.data())[0]!;
  const reference = checkMlpLoss(FRAMEWORK, s, args.warmup + args.reps, lossValue);
  rows.push({ ...mlpRow(FRAMEWORK, VERSION, s, ms, lossValue), referenceLoss: reference });
}

printRows(rows);
const file = await writeResult({ suite: "peers-jax", shape: args.shape, environment: env, rows });
console.log(`wrote ${file}`);
