/**
 * Size-bucketed pool of GPU storage buffers: freed buffers are kept and handed
 * out again for requests of the same bucket, so training steps stop
 * allocating after the first one.
 *
 * Buckets are 256 B up to 4 KiB, then 4 steps per power of two
 * (2^k × {1, 1.25, 1.5, 1.75}), so at most 25 % is wasted.
 *
 * @module
 */

import { BufferUsage } from "./gpu_flags.ts";

/** Usage flags of every pooled buffer. */
export const POOL_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC |
  BufferUsage.COPY_DST;

/** Memory counters (bytes). */
export interface MemoryStats {
  /** Bytes held by live tensors (bucket sizes). */
  liveBytes: number;
  /** Highest `liveBytes` since start or {@link BufferPool.resetPeak}. */
  peakLiveBytes: number;
  /** Bytes the pool has allocated on the GPU: live plus idle cached buffers. */
  reservedBytes: number;
  /** Highest `reservedBytes`. */
  peakReservedBytes: number;
  /** Buffers currently live. */
  liveBuffers: number;
}

/** Rounds a byte count up to its bucket size. */
export function bucketSize(bytes: number): number {
  const n = Math.max(bytes, 4);
  if (n <= 4096) return Math.ceil(n / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(n));
  for (const f of [1, 1.25, 1.5, 1.75, 2]) {
    if (p * f >= n) return p * f;
  }
  return 2 * p;
}

/** Thrown when a tensor does not fit the device's buffer limits. */
export class TensorTooLargeError extends Error {
  /** Creates the error naming the operation and the sizes. */
  constructor(what: string, bytes: number, limit: number, limitName: string) {
    super(
      `${what}: needs ${bytes} bytes but the device's ${limitName} is ${limit}; ` +
        `split the tensor (e.g. along rows) or use a smaller shape`,
    );
    this.name = "TensorTooLargeError";
  }
}

/** The buffer pool of one device. */
export class BufferPool {
  #device: GPUDevice;
  #create: (descriptor: GPUBufferDescriptor) => GPUBuffer;
  #free = new Map<number, GPUBuffer[]>();
  #stats: MemoryStats = {
    liveBytes: 0,
    peakLiveBytes: 0,
    reservedBytes: 0,
    peakReservedBytes: 0,
    liveBuffers: 0,
  };

  /** Creates an empty pool on `device`. */
  constructor(
    device: GPUDevice,
    create: (descriptor: GPUBufferDescriptor) => GPUBuffer = (d) => device.createBuffer(d),
  ) {
    this.#device = device;
    this.#create = create;
  }

  /** Returns a buffer of at least `bytes` bytes (its size is the bucket size). */
  acquire(bytes: number, what = "tensor"): GPUBuffer {
    const size = bucketSize(bytes);
    const limit = this.#device.limits.maxBufferSize;
    if (size > limit) throw new TensorTooLargeError(what, bytes, limit, "maxBufferSize");
    let buffer = this.#free.get(size)?.pop();
    if (!buffer) {
      buffer = this.#create({ size, usage: POOL_USAGE, label: what });
      this.#stats.reservedBytes += size;
      this.#stats.peakReservedBytes = Math.max(
        this.#stats.peakReservedBytes,
        this.#stats.reservedBytes,
      );
    }
    this.#stats.liveBytes += size;
    this.#stats.liveBuffers++;
    this.#stats.peakLiveBytes = Math.max(this.#stats.peakLiveBytes, this.#stats.liveBytes);
    return buffer;
  }

  /**
   * Returns `buffer` to the pool. Safe while queued commands still use it:
   * commands that reuse it are encoded later, and the queue runs in order.
   */
  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buffer);
    this.#stats.liveBytes -= size;
    this.#stats.liveBuffers--;
  }

  /** Destroys idle cached buffers (call only after pending work is submitted). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.#stats.reservedBytes -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  /** A snapshot of the counters. */
  stats(): MemoryStats {
    return { ...this.#stats };
  }

  /** Resets the peaks to the current values. */
  resetPeak(): void {
    this.#stats.peakLiveBytes = this.#stats.liveBytes;
    this.#stats.peakReservedBytes = this.#stats.reservedBytes;
  }
}
