import assert from "node:assert/strict";
import { backward, parameter } from "./autograd.ts";
import { getDevice } from "./device.ts";
import { currentOpLabel, withOpLabel } from "./op_label.ts";
import { rmsNorm } from "./ops/rmsnorm.ts";
import { formatOpProfile, profileOps, summarizeSpans } from "./profile.ts";
import { sum } from "./ops/reduce.ts";
import { tidy } from "./scope.ts";
import { gpuTest } from "./testing/mod.ts";

Deno.test("summarizeSpans groups by label, sorts by time and reports shares", () => {
  const p = summarizeSpans([
    ["a", 100, "k1"],
    ["b", 300, "k2"],
    ["a", 100, "k3"],
  ], 4);
  assert.deepEqual(p.rows.map((r) => [r.op, r.dispatches, r.share]), [["b", 1, 0.6], [
    "a",
    2,
    0.4,
  ]]);
  assert.deepEqual(p.rows[1]!.kernels, ["k1", "k3"]);
  assert.equal(p.totalMs, 0.0005);
  assert.equal(p.timedDispatches, 3);
  assert.match(formatOpProfile(p), /1 dispatches untimed/);
});

Deno.test("op labels nest and restore", () => {
  assert.equal(currentOpLabel(), undefined);
  withOpLabel("outer", () => {
    withOpLabel("inner", () => assert.equal(currentOpLabel(), "inner"));
    assert.equal(currentOpLabel(), "outer");
  });
  assert.equal(currentOpLabel(), undefined);
});

gpuTest("a dispatch is labelled by the op (forward or backward) that issued it", async () => {
  const device = await getDevice();
  if (!device.hasTimestamps) return;
  const x = parameter(new Float32Array(24).map((_, i) => i / 7 - 1), [3, 8]);
  const w = parameter(new Float32Array(8).fill(1.5), [8]);
  // More dispatches than one query set holds exercise the chunked query sets.
  const profile = await profileOps(() =>
    tidy(() => {
      for (let i = 0; i < 1100; i++) rmsNorm(x, w).dispose();
      backward(sum(rmsNorm(x, w)));
    }), { maxDispatches: 4000 });
  const ops = new Map(profile.rows.map((r) => [r.op, r]));
  assert.equal(ops.get("rms_norm")?.dispatches, 1101);
  assert.deepEqual(ops.get("rms_norm.backward")?.kernels, [
    "rms_norm-backward-w",
    "rms_norm-backward-x",
  ]);
  assert.equal(profile.timedDispatches, profile.dispatches);
  assert(profile.rows.every((r) => r.ms >= 0));
  x.grad?.dispose();
  w.grad?.dispose();
  x.dispose();
  w.dispose();
});
