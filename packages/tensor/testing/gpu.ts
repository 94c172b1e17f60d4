/**
 * `gpuTest`: a `Deno.test` that gets the device first and is skipped (with
 * the printed reason) when the machine has no WebGPU adapter.
 *
 * @module
 */

import { describeNoGpu, type Device, getDevice } from "../device.ts";

let device: Device | undefined;
let reason: string | undefined;
try {
  device = await getDevice();
} catch (e) {
  reason = describeNoGpu(e) ?? String(e);
  console.warn(`skipping GPU tests: ${reason}`);
}

/** Registers a test that needs the GPU. */
export function gpuTest(name: string, fn: (device: Device) => void | Promise<void>): void {
  Deno.test({
    name,
    ignore: device === undefined,
    // Pooled buffers and cached pipelines live across tests on purpose.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => fn(device!),
  });
}
