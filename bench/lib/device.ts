/**
 * Opening the WebGPU device for a benchmark: prints the one-sentence advice
 * and exits with status 1 when there is no adapter.
 *
 * @module
 */

import { describeNoGpu, type Device, getDevice } from "@irforge/tensor";

/** `await getDevice()`, or exit(1) with the installation advice. */
export async function openDevice(): Promise<Device> {
  try {
    return await getDevice();
  } catch (e) {
    console.error(describeNoGpu(e) ?? String(e));
    Deno.exit(1);
  }
}
