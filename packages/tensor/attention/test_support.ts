/**
 * Helpers for this folder's tests: a WebGPU device, uploads, read-backs,
 * seeded random data and the relative error used in assertions. Not exported.
 *
 * @module
 */

import { BufferUsage, MapMode } from "./gpu_flags.ts";

let devicePromise: Promise<GPUDevice | undefined> | undefined;

/** The test device (default limits, `shader-f16` when offered), or undefined without WebGPU. */
export function testDevice(): Promise<GPUDevice | undefined> {
  devicePromise ??= (async () => {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) return undefined;
    const requiredFeatures: GPUFeatureName[] = adapter.features.has("shader-f16")
      ? ["shader-f16"]
      : [];
    return await adapter.requestDevice({ requiredFeatures });
  })();
  return devicePromise;
}

/** Uploads numbers as an f32 storage buffer. */
export function upload(device: GPUDevice, values: ArrayLike<number>): GPUBuffer {
  const data = Float32Array.from(values as ArrayLike<number>);
  const buffer = device.createBuffer({
    size: Math.max(4, data.byteLength),
    usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Reads an f32 buffer back. */
export async function readBack(device: GPUDevice, buffer: GPUBuffer): Promise<Float32Array> {
  const staging = device.createBuffer({
    size: buffer.size,
    usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(MapMode.READ);
  const result = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return result;
}

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
export function seededRandom(seed: number, count: number): Float64Array {
  let state = seed >>> 0;
  const out = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[n] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Rounds to f32 (so the reference sees exactly what the GPU sees). */
export function toF32(values: Float64Array): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

/** max|a − b| / max|b| (0 when both are all zero); NaN anywhere gives Infinity. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length < expected.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let n = 0; n < expected.length; n++) {
    const a = actual[n]!, b = expected[n]!;
    if (Number.isNaN(a) || Number.isNaN(b)) return Infinity;
    if (a === b) {
      if (Number.isFinite(b)) maxRef = Math.max(maxRef, Math.abs(b));
      continue;
    }
    maxDiff = Math.max(maxDiff, Math.abs(a - b));
    maxRef = Math.max(maxRef, Math.abs(b));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}
