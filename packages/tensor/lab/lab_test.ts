import assert from "node:assert/strict";
import { getDevice, NoGpuError } from "../device.ts";
import { registeredKernels } from "../kernel.ts";
import { getRuntime } from "../runtime.ts";
import { estimateWave, waves } from "./counts.ts";
import { labFamilies, type LabScale } from "./family.ts";
import { matmulCounts } from "./families/matmul.ts";
import { MATMUL_FAMILY } from "../ops/matmul_kernels.ts";
import { median, timeRecorded } from "./timing.ts";
import "./mod.ts";

async function deviceOrSkip() {
  try {
    return await getDevice();
  } catch (e) {
    if (e instanceof NoGpuError) return undefined;
    throw e;
  }
}

Deno.test("every kernel of the package belongs to a lab family, once", () => {
  const covered = new Map<string, string>();
  for (const f of labFamilies()) {
    for (const k of f.kernels) {
      assert(!covered.has(k), `kernel ${k} is in families ${covered.get(k)} and ${f.name}`);
      covered.set(k, f.name);
    }
  }
  const names = registeredKernels().map((k) => k.name);
  const missing = names.filter((n) => !covered.has(n));
  assert.deepEqual(missing, [], `kernels without a lab family: ${missing.join(", ")}`);
  const unknown = [...covered.keys()].filter((k) => !names.includes(k));
  assert.deepEqual(unknown, [], `lab families name unknown kernels: ${unknown.join(", ")}`);
});

Deno.test("matmul design counts by hand: 128×128 tiles of 8×8 on 4096³", () => {
  const v = MATMUL_FAMILY.find((m) => m.bm === 128 && m.bn === 128 && m.bk === 8 && m.tm === 8)!;
  const c = matmulCounts(v, { M: 4096, N: 4096, K: 4096, transB: true });
  assert.equal(c.flops, 2 * 4096 ** 3);
  assert.equal(c.minBytes, 3 * 4096 * 4096 * 4);
  // A and B each re-read once per 128-wide tile of the other dimension: 32 times.
  assert.equal(c.globalReadBytes, 2 * 32 * 4096 * 4096 * 4);
  assert.equal(c.workgroups, 32 * 32);
  assert.equal(c.threadsPerWorkgroup, 256);
  // Per k: 2 + 2 vec4 loads feed 64 FMAs.
  assert.equal(c.workgroupLoadsPerFma, 4 / 64);
});

Deno.test("wave estimate: H200 datasheet residency, CPU adapters one per thread", () => {
  const h200 = { description: "NVIDIA H200", isCpuAdapter: false };
  // 256 threads, 8 KiB: 8 per SM by threads (2048/256), 28 by shared memory → 8 × 132.
  const w = estimateWave(h200, 256, 8 * 1024);
  assert.equal(w.perMultiprocessor, 8);
  assert.equal(w.workgroupsPerWave, 8 * 132);
  // 48 KiB of workgroup memory: 4 per SM (228/48).
  assert.equal(estimateWave(h200, 256, 48 * 1024).perMultiprocessor, 4);
  assert.equal(waves(1024, w), 1024 / 1056);
  const cpu = estimateWave({ description: "llvmpipe", isCpuAdapter: true }, 256, 0, 2);
  assert.equal(cpu.workgroupsPerWave, 2);
  assert.match(
    estimateWave({ description: "Mystery GPU", isCpuAdapter: false }, 64, 0).basis,
    /assumed/,
  );
});

Deno.test("median of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert(Number.isNaN(median([])));
});

Deno.test("every lab case records on this adapter with sane counts; timings take ≥ 10 runs", async (t) => {
  const device = await deviceOrSkip();
  if (!device) {
    await t.step({ name: "skipped: no WebGPU adapter", ignore: true, fn: () => {} });
    return;
  }
  const scale: LabScale = "cpu";
  const seen = new Set<string>();
  for (const family of labFamilies()) {
    for (const c of family.cases(scale, device)) {
      const what = `${family.name}/${c.kernel} ${c.variant} ${c.problem}`;
      const k = c.counts;
      assert(k.flops >= 0 && k.minBytes > 0 && k.workgroups > 0 && k.threadsPerWorkgroup > 0, what);
      assert(
        k.globalReadBytes + k.globalWriteBytes >= k.minBytes * 0.999,
        `${what}: moves less than the minimum`,
      );
      // One case per kernel is enough to prove the recorder launches that kernel.
      if (seen.has(c.kernel)) continue;
      seen.add(c.kernel);
      const run = c.prepare();
      const rt = getRuntime();
      const before = rt.counters().dispatches;
      run.record();
      assert(rt.counters().dispatches > before, `${what}: records nothing`);
      await rt.sync();
      await rt.checkErrors();
      run.dispose();
    }
  }
  const runnable = labFamilies().flatMap((f) =>
    f.kernels.filter((k) => {
      const why = f.requirements?.[k]?.(device);
      if (why) console.log(`lab: ${k} has no case on this adapter: ${why}`);
      return !why;
    })
  );
  assert.deepEqual(
    [...seen].sort(),
    runnable.sort(),
    "every runnable kernel has a case at CPU scale",
  );
  // The timing machinery: warm-up, at least 10 runs, median within [min, max].
  const [first] = labFamilies().find((f) => f.name === "rows")!.cases(scale, device);
  const run = first!.prepare();
  const timing = await timeRecorded(run.record, { reps: 3, kernel: first!.kernel });
  run.dispose();
  assert.equal(timing.reps, 10);
  assert(timing.minMs <= timing.medianMs && timing.medianMs <= timing.maxMs);
});
