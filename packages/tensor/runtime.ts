/**
 * Kernel launching: pipeline cache, command batching, uniform parameters,
 * uploads, readbacks and GPU error reporting.
 *
 * Dispatches are recorded into one command encoder and submitted in batches
 * (every {@link BATCH_DISPATCHES} dispatches, or before any upload, readback
 * or {@link flush}), so a training step costs few submits.
 *
 * Error policy: by default, GPU validation and out-of-memory errors arrive
 * asynchronously through the device's `uncapturederror` event; the runtime
 * records them with the name of the op that was dispatching last and throws a
 * {@link GpuOpError} at the next readback ({@link readBuffer}) or
 * {@link checkGpuErrors}. With debug mode on (`setGpuDebug(true)` or the
 * environment variable `IRFORGE_GPU_DEBUG=1`) every dispatch is submitted on
 * its own inside error scopes, so the error names exactly the failing op — at
 * the cost of one submit per op; it never reads back synchronously.
 *
 * @module
 */

import { currentDevice, type Device } from "./device.ts";
import { BufferUsage, MapMode } from "./gpu_flags.ts";
import { BufferPool, type MemoryStats } from "./pool.ts";

/** Dispatches recorded before an automatic submit. */
export const BATCH_DISPATCHES = 64;
/** Bytes of uniform parameters each dispatch gets (one aligned slot). */
export const PARAM_BYTES = 256;
const ARENA_SLOTS = 256;

/** A GPU error attributed to the op that caused it. */
export class GpuOpError extends Error {
  /** The op that was dispatching when the error was raised. */
  readonly op: string;
  /** Creates the error. */
  constructor(op: string, message: string) {
    super(`GPU error in op "${op}": ${message}`);
    this.name = "GpuOpError";
    this.op = op;
  }
}

/** One buffer bound to a kernel, optionally a byte range of it. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** What one kernel launch needs. */
export interface DispatchRequest {
  /** Op name, for errors and timing. */
  op: string;
  /** WGSL source; pipelines are cached by source text. */
  code: string;
  /** Storage buffers in binding order 0..n-1; the params uniform is binding n. */
  buffers: Binding[];
  /** Uniform parameters (at most {@link PARAM_BYTES} bytes). */
  params: ArrayBuffer;
  /** Workgroup counts. */
  workgroups: [number, number?, number?];
}

/** Per-device launching state. */
export class Runtime {
  /** The device. */
  readonly device: Device;
  /** Buffer pool for tensors. */
  readonly pool: BufferPool;
  #gpu: GPUDevice;
  #pipelines = new Map<string, GPUComputePipeline>();
  #encoder: GPUCommandEncoder | undefined;
  #recorded = 0;
  #arena: GPUBuffer;
  #arenaCpu = new Uint8Array(ARENA_SLOTS * PARAM_BYTES);
  #errors: GpuOpError[] = [];
  #scoped: Promise<void>[] = [];
  #lastOp = "(none)";
  #timestamps: { querySet: GPUQuerySet; op: string[] } | undefined;
  /** Whether each dispatch runs inside its own error scopes. */
  debug = false;

  /** Creates the runtime of `device`. */
  constructor(device: Device) {
    this.device = device;
    this.#gpu = device.gpu;
    this.pool = new BufferPool(device.gpu);
    this.#arena = this.#gpu.createBuffer({
      size: ARENA_SLOTS * PARAM_BYTES,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
      label: "params-arena",
    });
    this.#gpu.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.#errors.push(new GpuOpError(this.#lastOp, error.message));
    });
    this.debug = Deno.env.get("IRFORGE_GPU_DEBUG") === "1";
  }

  /** Returns the cached pipeline for `code`, compiling it on first use. */
  pipeline(code: string, op: string): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (!p) {
      const module = this.#gpu.createShaderModule({ code, label: op });
      p = this.#gpu.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: op,
      });
      this.#pipelines.set(code, p);
    }
    return p;
  }

  /** Records one kernel launch. */
  dispatch(req: DispatchRequest): void {
    if (req.params.byteLength > PARAM_BYTES) throw new Error(`${req.op}: params too large`);
    const [x, y = 1, z = 1] = req.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new Error(`${req.op}: dispatch ${x}×${y}×${z} exceeds ${max} workgroups per dimension`);
    }
    if (this.#recorded === ARENA_SLOTS) this.flush();
    if (this.debug) {
      this.#gpu.pushErrorScope("validation");
      this.#gpu.pushErrorScope("out-of-memory");
    }
    this.#lastOp = req.op;
    const slot = this.#recorded++;
    this.#arenaCpu.set(new Uint8Array(req.params), slot * PARAM_BYTES);
    const pipeline = this.pipeline(req.code, req.op);
    const entries: GPUBindGroupEntry[] = req.buffers.map((b, i) => ({
      binding: i,
      resource: b instanceof GPUBuffer ? { buffer: b } : b,
    }));
    entries.push({
      binding: req.buffers.length,
      resource: { buffer: this.#arena, offset: slot * PARAM_BYTES, size: PARAM_BYTES },
    });
    const bindGroup = this.#gpu.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries,
      label: req.op,
    });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    const ts = this.#timestamps;
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (ts && ts.op.length < ts.querySet.count / 2) {
      const i = ts.op.length;
      ts.op.push(req.op);
      timestampWrites = {
        querySet: ts.querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      };
    }
    const pass = this.#encoder.beginComputePass({ label: req.op, timestampWrites });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    if (this.debug) {
      this.flush();
      const op = req.op;
      const oom = this.#gpu.popErrorScope();
      const validation = this.#gpu.popErrorScope();
      this.#scoped.push(
        Promise.all([oom, validation]).then((errors) => {
          for (const e of errors) if (e) this.#errors.push(new GpuOpError(op, e.message));
        }),
      );
    } else if (this.#recorded >= BATCH_DISPATCHES) {
      this.flush();
    }
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.#encoder) return;
    if (this.#recorded > 0) {
      this.#gpu.queue.writeBuffer(this.#arena, 0, this.#arenaCpu, 0, this.#recorded * PARAM_BYTES);
    }
    this.#gpu.queue.submit([this.#encoder.finish()]);
    this.#encoder = undefined;
    this.#recorded = 0;
  }

  /** Writes `data` at the start of `buffer`, after the pending work is submitted. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const aligned = Math.ceil(bytes.byteLength / 4) * 4;
    if (aligned === bytes.byteLength) {
      this.#gpu.queue.writeBuffer(buffer, offset, bytes);
    } else {
      const padded = new Uint8Array(aligned);
      padded.set(bytes);
      this.#gpu.queue.writeBuffer(buffer, offset, padded);
    }
  }

  /** Reads `bytes` bytes from `buffer` (at `offset`), after all pending work. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.#gpu.createBuffer({
      size,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
    });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.flush();
    await staging.mapAsync(MapMode.READ);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.checkErrors();
    return out;
  }

  /** Throws the first recorded GPU error, if any (and forgets the rest). */
  async checkErrors(): Promise<void> {
    const scoped = this.#scoped;
    this.#scoped = [];
    await Promise.all(scoped);
    const first = this.#errors[0];
    this.#errors = [];
    if (first) throw first;
  }

  /** Waits until the GPU finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.#gpu.queue.onSubmittedWorkDone();
  }

  /**
   * Starts recording GPU timestamps around each dispatch (needs
   * `timestamp-query`); {@link stopTiming} returns per-op nanoseconds.
   */
  startTiming(maxDispatches = 256): boolean {
    if (!this.device.hasTimestamps) return false;
    this.flush();
    this.#timestamps = {
      querySet: this.#gpu.createQuerySet({ type: "timestamp", count: 2 * maxDispatches }),
      op: [],
    };
    return true;
  }

  /** Ends timing; returns `[op, nanoseconds]` per recorded dispatch. */
  async stopTiming(): Promise<[string, number][]> {
    const ts = this.#timestamps;
    this.#timestamps = undefined;
    if (!ts || ts.op.length === 0) return [];
    const n = ts.op.length * 2;
    const resolve = this.#gpu.createBuffer({
      size: n * 8,
      usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC,
    });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    this.#encoder.resolveQuerySet(ts.querySet, 0, n, resolve, 0);
    const raw = new BigUint64Array(await this.read(resolve, n * 8));
    resolve.destroy();
    ts.querySet.destroy();
    return ts.op.map((op, i) => [op, Number(raw[2 * i + 1]! - raw[2 * i]!)]);
  }
}

let runtime: Runtime | undefined;

/** The runtime of the current device (after `await getDevice()`). */
export function getRuntime(): Runtime {
  const device = currentDevice();
  if (!runtime || runtime.device !== device) runtime = new Runtime(device);
  return runtime;
}

/** Turns per-dispatch error scopes on or off (see the module docs). */
export function setGpuDebug(on: boolean): void {
  getRuntime().debug = on;
}

/** Awaits pending error scopes and throws the first GPU error seen, if any. */
export function checkGpuErrors(): Promise<void> {
  return getRuntime().checkErrors();
}

/** Submits pending work and waits for the GPU to finish it. */
export function syncGpu(): Promise<void> {
  return getRuntime().sync();
}

/** Memory counters of the tensor buffer pool. */
export function memoryStats(): MemoryStats {
  return getRuntime().pool.stats();
}

/** Resets the peak counters of {@link memoryStats}. */
export function resetPeakMemory(): void {
  getRuntime().pool.resetPeak();
}

/** Frees idle pooled buffers back to the driver. */
export function emptyCache(): void {
  const rt = getRuntime();
  rt.flush();
  rt.pool.trim();
}

/**
 * Splits `count` workgroups over x and y so neither exceeds the per-dimension
 * limit; kernels recover the linear id as `wid.x + wid.y * num_workgroups.x`.
 */
export function grid(count: number): [number, number] {
  const max = 65535;
  if (count <= max) return [count, 1];
  const y = Math.ceil(count / max);
  return [Math.ceil(count / y), y];
}

/** Builds a params block from u32/i32/f32 fields: `{u: [...]}` etc. in order. */
export class Params {
  #view = new DataView(new ArrayBuffer(PARAM_BYTES));
  #at = 0;
  /** Appends unsigned integers. */
  u32(...values: number[]): this {
    for (const v of values) {
      this.#view.setUint32(this.#at, v >>> 0, true);
      this.#at += 4;
    }
    return this;
  }
  /** Appends signed integers. */
  i32(...values: number[]): this {
    for (const v of values) {
      this.#view.setInt32(this.#at, v, true);
      this.#at += 4;
    }
    return this;
  }
  /** Appends 32-bit floats (±Infinity and NaN allowed). */
  f32(...values: number[]): this {
    for (const v of values) {
      this.#view.setFloat32(this.#at, v, true);
      this.#at += 4;
    }
    return this;
  }
  /** The bytes (always {@link PARAM_BYTES} long). */
  get buffer(): ArrayBuffer {
    return this.#view.buffer as ArrayBuffer;
  }
}

let bindingLimitOverride: number | undefined;

/**
 * Largest byte range one kernel may bind: the device's
 * `maxStorageBufferBindingSize`, or a lower value set with
 * {@link setBindingLimitForTesting} (tests exercise the splitting paths).
 */
export function maxBindingBytes(): number {
  const limit = getRuntime().device.limits.maxStorageBufferBindingSize;
  return Math.min(limit, bindingLimitOverride ?? limit);
}

/** Lowers the binding limit ops plan for (`undefined` restores the device's). */
export function setBindingLimitForTesting(bytes: number | undefined): void {
  bindingLimitOverride = bytes;
}
