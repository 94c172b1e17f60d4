/**
 * Helpers for this folder's tests: a WebGPU device, uploads, read-backs,
 * seeded random data and the relative error used in assertions. Not exported.
 *
 * @module
 */

import { getDevice, NoGpuError } from "../device.ts";
import { getRuntime } from "../runtime.ts";
import { BufferUsage } from "./gpu_flags.ts";

/**
 * The runtime's device (the kernels record into its command encoder), or
 * undefined without WebGPU.
 */
export async function testDevice(): Promise<GPUDevice | undefined> {
  try {
    return (await getDevice()).gpu;
  } catch (e) {
    if (e instanceof NoGpuError) return undefined;
    throw e;
  }
}

/** Uploads numbers as an f32 storage buffer (in order with recorded work). */
export function upload(device: GPUDevice, values: ArrayLike<number>): GPUBuffer {
  const data = Float32Array.from(values as ArrayLike<number>);
  const buffer = device.createBuffer({
    size: Math.max(4, data.byteLength),
    usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
  });
  getRuntime().write(buffer, data);
  return buffer;
}

/** Uploads numbers as an f16 storage buffer (rounded to nearest; size padded to whole words). */
export function uploadF16(device: GPUDevice, values: ArrayLike<number>): GPUBuffer {
  const data = Float16Array.from(values as ArrayLike<number>);
  const buffer = device.createBuffer({
    size: Math.max(4, Math.ceil(data.byteLength / 4) * 4),
    usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
  });
  const padded = new Uint8Array(buffer.size);
  padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  getRuntime().write(buffer, padded);
  return buffer;
}

/** Reads an f16 buffer of `count` values back as f32, after everything recorded so far. */
export async function readBackF16(buffer: GPUBuffer, count: number): Promise<Float32Array> {
  const bytes = await getRuntime().read(buffer, buffer.size);
  return Float32Array.from(new Float16Array(bytes, 0, count));
}

/** Rounds to f16 (so the reference sees exactly what the GPU sees). */
export function toF16(values: Float64Array): Float64Array {
  return Float64Array.from(Float16Array.from(values));
}

/** Reads an f32 buffer back, after everything recorded so far. */
export async function readBack(_device: GPUDevice, buffer: GPUBuffer): Promise<Float32Array> {
  return new Float32Array(await getRuntime().read(buffer, buffer.size));
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
