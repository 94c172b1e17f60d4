/**
 * NF4 (QLoRA 4-bit NormalFloat) storage: each block of `blockSize` values is
 * scaled by its absmax and every value replaced by the nearest of 16 NF4
 * levels. Codes are packed 2 per byte, element 2i in the high nibble of byte
 * i (bitsandbytes order); absmax is a separate f32 tensor tied to the codes'
 * storage. `quantizeNf4Cpu`/`dequantizeNf4Cpu` are the references;
 * `dequantizeNf4` is the GPU kernel.
 *
 * @module
 */

import { defineKernel } from "./kernel.ts";
import { getRuntime, grid } from "./runtime.ts";
import { sizeOf, Storage, Tensor } from "./tensor.ts";

/** The 16 NF4 levels (bitsandbytes). */
export const NF4_LEVELS: readonly number[] = [
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
];

/** Packed codes and scales on the CPU. */
export interface Nf4Data {
  /** ceil(n/2) bytes of packed codes. */
  codes: Uint8Array;
  /** One absmax per block. */
  absmax: Float32Array;
  /** Elements per block. */
  blockSize: number;
}

/** Quantises `values` to NF4 (nearest level after absmax scaling). */
export function quantizeNf4Cpu(values: ArrayLike<number>, blockSize = 64): Nf4Data {
  const n = values.length;
  const blocks = Math.ceil(n / blockSize);
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * blockSize; i < Math.min(n, (b + 1) * blockSize); i++) {
      m = Math.max(m, Math.abs(values[i]!));
    }
    absmax[b] = m;
  }
  for (let i = 0; i < n; i++) {
    const scale = absmax[Math.floor(i / blockSize)]!;
    const x = scale === 0 ? 0 : values[i]! / scale;
    let best = 0, bestD = Infinity;
    NF4_LEVELS.forEach((level, c) => {
      const d = Math.abs(x - level);
      if (d < bestD) [best, bestD] = [c, d];
    });
    codes[i >> 1]! |= i % 2 === 0 ? best << 4 : best;
  }
  return { codes, absmax, blockSize };
}

/** Dequantises NF4 data of `n` elements (float64 reference). */
export function dequantizeNf4Cpu(data: Nf4Data, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const byte = data.codes[i >> 1]!;
    const code = i % 2 === 0 ? byte >> 4 : byte & 15;
    out[i] = NF4_LEVELS[code]! * data.absmax[Math.floor(i / data.blockSize)]!;
  }
  return out;
}

/** Uploads NF4 data as an `nf4` tensor of `shape` (absmax lives as long as the codes). */
export function nf4Tensor(data: Nf4Data, shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  if (data.codes.length !== Math.ceil(n / 2)) {
    throw new Error(`nf4Tensor: ${data.codes.length} bytes for ${n} values`);
  }
  const rt = getRuntime();
  const absmax = Tensor.fromArray(data.absmax, [data.absmax.length]).keep();
  const buffer = rt.pool.acquire(data.codes.length, "nf4");
  const storage = new Storage(buffer, data.codes.length);
  storage.attach(absmax);
  rt.write(buffer, data.codes);
  return new Tensor(storage, shape, "nf4", { nf4: { absmax, blockSize: data.blockSize } });
}

/** Quantises `values` on the CPU and uploads them as an `nf4` tensor. */
export function quantizeNf4(
  values: ArrayLike<number>,
  shape: readonly number[],
  blockSize = 64,
): Tensor {
  return nf4Tensor(quantizeNf4Cpu(values, blockSize), shape);
}

const DEQUANT = defineKernel({
  name: "dequantize_nf4",
  key: () => "",
  uniforms: { n: "u32", blockSize: "u32" },
  bindings: () => ({
    Y: { type: "array<f32>", access: "read_write" },
    CODES: { type: "array<u32>" },
    ABSMAX: { type: "array<f32>" },
  }),
  source: () => `
var<private> LEVELS: array<f32, 16> = array<f32, 16>(${
    NF4_LEVELS.map((v) => v.toPrecision(17)).join(", ")
  });
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let blockSize = P.blockSize;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let byteIndex = i >> 1u;
  let byte = (CODES[byteIndex >> 2u] >> (8u * (byteIndex & 3u))) & 0xffu;
  let code = select(byte & 15u, byte >> 4u, (i & 1u) == 0u);
  Y[i] = LEVELS[code] * ABSMAX[i / blockSize];
}`,
});

/** Dequantises an `nf4` tensor to f32 on the GPU (no autograd: frozen weights). */
export function dequantizeNf4(t: Tensor): Tensor {
  if (t.dtype !== "nf4" || !t.nf4) throw new Error(`dequantizeNf4: needs an nf4 tensor, got ${t}`);
  const y = Tensor.empty(t.shape, "f32");
  getRuntime().launch(
    DEQUANT,
    undefined,
    { Y: y.buffer, CODES: t.buffer, ABSMAX: t.nf4.absmax.buffer },
    { n: t.size, blockSize: t.nf4.blockSize },
    grid(Math.ceil(t.size / 256)),
  );
  return y;
}
