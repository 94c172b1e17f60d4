/**
 * Kernel launching ({@link Runtime.launch} of kernels declared with
 * `defineKernel`): one pipeline cache keyed by (kernel name, spec key), a ring
 * of uniform slots, command batching,
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
import {
  type Binding,
  bindingNames,
  type BindingValues,
  type Kernel,
  kernelSource,
  MAX_UNIFORM_BYTES,
  packUniforms,
  type UniformDecl,
  type UniformValues,
} from "./kernel.ts";
import { bucketSize, BufferPool, type MemoryStats } from "./pool.ts";
import { currentOpLabel } from "./op_label.ts";
import { awaitDawn } from "./dawn_wait.ts";

/** Dispatches recorded before an automatic submit. */
export const BATCH_DISPATCHES = 64;
/** Bytes of uniform data each dispatch gets: one aligned slot of the uniform ring. */
export const PARAM_BYTES = MAX_UNIFORM_BYTES;
const RING_SLOTS = 256;
/** Dispatches one timestamp query set holds (WebGPU allows 4096 queries per set). */
const QUERY_SET_DISPATCHES = 2048;

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

export type { Binding } from "./kernel.ts";

/**
 * Monotonic counters of host-side work; a benchmark or test takes the
 * difference over a step ({@link Runtime.counters}).
 */
export interface RuntimeCounters {
  /** Kernel launches recorded. */
  dispatches: number;
  /** Compute pipelines compiled on the device (pipeline-cache misses). */
  pipelinesCreated: number;
  /** GPU buffers created on the device (pool, staging, query resolve, anything else). */
  buffersCreated: number;
  /** Uniform buffers created on the device (the runtime's ring is created once). */
  uniformBuffersCreated: number;
  /** Command buffers submitted. */
  submits: number;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: string[];
}

/** Per-device launching state. */
export class Runtime {
  /** The device. */
  readonly device: Device;
  /** Buffer pool for tensors. */
  readonly pool: BufferPool;
  #gpu: GPUDevice;
  #pipelines = new Map<string, CachedPipeline>();
  #encoder: GPUCommandEncoder | undefined;
  #recorded = 0;
  #ring: GPUBuffer;
  #ringCpu = new Uint8Array(RING_SLOTS * PARAM_BYTES);
  #ringView = new DataView(this.#ringCpu.buffer);
  #afterSubmit: (() => void)[] = [];
  #staging = new Map<number, GPUBuffer[]>();
  #errors: GpuOpError[] = [];
  #scoped: Promise<void>[] = [];
  #lastOp = "(none)";
  #timestamps:
    | { querySets: GPUQuerySet[]; max: number; op: string[]; kernel: string[] }
    | undefined;
  #counters: RuntimeCounters = {
    dispatches: 0,
    pipelinesCreated: 0,
    buffersCreated: 0,
    uniformBuffersCreated: 0,
    submits: 0,
  };
  /** Whether each dispatch runs inside its own error scopes. */
  debug = false;

  /** Creates the runtime of `device`. */
  constructor(device: Device) {
    this.device = device;
    this.#gpu = device.gpu;
    this.#countCreations(device.gpu);
    this.pool = new BufferPool(device.gpu, (descriptor) => this.createBuffer(descriptor));
    this.#ring = this.createBuffer({
      size: RING_SLOTS * PARAM_BYTES,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
      label: "uniform-ring",
    });
    this.#gpu.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.#errors.push(new GpuOpError(this.#lastOp, error.message));
    });
    this.debug = Deno.env.get("IRFORGE_GPU_DEBUG") === "1";
  }

  /** A snapshot of the host-work counters. */
  counters(): RuntimeCounters {
    return { ...this.#counters };
  }

  /** Creates a GPU buffer (counted, like every buffer made on the device). */
  createBuffer(descriptor: GPUBufferDescriptor): GPUBuffer {
    return this.#gpu.createBuffer(descriptor);
  }

  // Every buffer and pipeline made on the device is counted, whoever makes it,
  // so a per-step allocation anywhere (even outside the runtime) shows up.
  #countCreations(gpu: GPUDevice): void {
    const counters = this.#counters;
    const createBuffer = gpu.createBuffer.bind(gpu);
    const createComputePipeline = gpu.createComputePipeline.bind(gpu);
    gpu.createBuffer = (descriptor: GPUBufferDescriptor) => {
      counters.buffersCreated++;
      if (descriptor.usage & BufferUsage.UNIFORM) counters.uniformBuffersCreated++;
      return createBuffer(descriptor);
    };
    gpu.createComputePipeline = (descriptor: GPUComputePipelineDescriptor) => {
      counters.pipelinesCreated++;
      return createComputePipeline(descriptor);
    };
  }

  /** Runs `callback` once the work recorded so far has been submitted (frees temporaries). */
  afterSubmit(callback: () => void): void {
    this.#afterSubmit.push(callback);
  }

  #cached<S, U extends UniformDecl, B extends string>(
    kernel: Kernel<S, U, B>,
    spec: S,
  ): CachedPipeline {
    const key = `${kernel.name}\u0000${kernel.key(spec)}`;
    let entry = this.#pipelines.get(key);
    if (!entry) {
      const code = kernelSource(kernel, spec);
      const label = `${kernel.name} [${kernel.key(spec)}]`;
      const module = this.#gpu.createShaderModule({ code, label });
      const pipeline = this.#gpu.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label,
      });
      entry = {
        pipeline,
        layout: pipeline.getBindGroupLayout(0),
        bindings: bindingNames(kernel, spec),
      };
      this.#pipelines.set(key, entry);
    }
    return entry;
  }

  /**
   * Records one launch of `kernel` specialised to `spec`: the pipeline comes
   * from the cache (built on a miss), the uniforms are packed by name into
   * the next slot of the uniform ring, and `buffers` bind by name. `label`
   * names the launch in errors, timings and profiles; by default the
   * registered op running now (`rms_norm`, `rms_norm.backward`, see
   * `op_label.ts`), else the kernel's name.
   */
  launch<S, U extends UniformDecl, B extends string>(
    kernel: Kernel<S, U, B>,
    spec: S,
    buffers: BindingValues<B>,
    uniforms: UniformValues<U>,
    workgroups: readonly [number, number?, number?],
    label: string = currentOpLabel() ?? kernel.name,
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new Error(
        `${kernel.name}: dispatch ${x}×${y}×${z} exceeds ${max} workgroups per dimension`,
      );
    }
    const { pipeline, layout, bindings } = this.#cached(kernel, spec);
    const entries: GPUBindGroupEntry[] = bindings.map((name, binding) => {
      const b = (buffers as Record<string, Binding | undefined>)[name];
      if (b === undefined) throw new Error(`${kernel.name}: no buffer for binding "${name}"`);
      return { binding, resource: isBufferRange(b) ? b : { buffer: b } };
    });
    for (const name of Object.keys(buffers)) {
      if ((buffers as Record<string, unknown>)[name] !== undefined && !bindings.includes(name)) {
        throw new Error(`${kernel.name}: binding "${name}" is not declared for this spec`);
      }
    }
    if (this.#recorded === RING_SLOTS) this.flush();
    if (this.debug) {
      this.#gpu.pushErrorScope("validation");
      this.#gpu.pushErrorScope("out-of-memory");
    }
    this.#lastOp = label;
    const slot = this.#recorded++;
    packUniforms(kernel, uniforms, this.#ringView, slot * PARAM_BYTES);
    entries.push({
      binding: bindings.length,
      resource: { buffer: this.#ring, offset: slot * PARAM_BYTES, size: kernel.uniformBytes },
    });
    const bindGroup = this.#gpu.createBindGroup({ layout, entries, label: kernel.name });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    const ts = this.#timestamps;
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (ts && ts.op.length < ts.max) {
      const i = ts.op.length;
      ts.op.push(label);
      ts.kernel.push(kernel.name);
      const set = Math.floor(i / QUERY_SET_DISPATCHES), at = i % QUERY_SET_DISPATCHES;
      // Query sets are created as the timed dispatches reach them.
      const querySet = ts.querySets[set] ??= this.#gpu.createQuerySet({
        type: "timestamp",
        count: 2 * Math.min(QUERY_SET_DISPATCHES, ts.max - set * QUERY_SET_DISPATCHES),
      });
      timestampWrites = {
        querySet,
        beginningOfPassWriteIndex: 2 * at,
        endOfPassWriteIndex: 2 * at + 1,
      };
    }
    const pass = this.#encoder.beginComputePass({ label, timestampWrites });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    this.#counters.dispatches++;
    if (this.debug) {
      this.flush();
      const op = label;
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

  /** Records a copy of `bytes` bytes between buffers, in order with the launches. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#encoder ??= this.#gpu.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.#encoder) return;
    if (this.#recorded > 0) {
      this.#gpu.queue.writeBuffer(this.#ring, 0, this.#ringCpu, 0, this.#recorded * PARAM_BYTES);
    }
    this.#gpu.queue.submit([this.#encoder.finish()]);
    this.#counters.submits++;
    this.#encoder = undefined;
    this.#recorded = 0;
    const after = this.#afterSubmit;
    this.#afterSubmit = [];
    for (const callback of after) callback();
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
    const size = bucketSize(Math.max(4, Math.ceil(bytes / 4) * 4));
    // Staging buffers are reused by size, so a step that reads its loss creates none.
    const staging = this.#staging.get(size)?.pop() ?? this.createBuffer({
      size,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
      label: "readback staging",
    });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(buffer, offset, staging, 0, Math.ceil(bytes / 4) * 4 || 4);
    this.flush();
    try {
      await awaitDawn(this.device.provider, () => staging.mapAsync(MapMode.READ));
      const out = staging.getMappedRange().slice(0, bytes);
      staging.unmap();
      let free = this.#staging.get(size);
      if (!free) this.#staging.set(size, free = []);
      free.push(staging);
      return out;
    } catch (e) {
      staging.destroy();
      throw e;
    } finally {
      await this.checkErrors();
    }
  }

  /** Throws the first recorded GPU error, if any (and forgets the rest). */
  async checkErrors(): Promise<void> {
    const scoped = this.#scoped;
    this.#scoped = [];
    if (scoped.length > 0) await awaitDawn(this.device.provider, () => Promise.all(scoped));
    const first = this.#errors[0];
    this.#errors = [];
    if (first) throw first;
  }

  /** Waits until the GPU finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await awaitDawn(this.device.provider, () => this.#gpu.queue.onSubmittedWorkDone());
  }

  /**
   * Starts recording GPU timestamps around each dispatch (needs
   * `timestamp-query`); {@link stopTiming} returns per-dispatch nanoseconds.
   * Dispatches past `maxDispatches` are not timed (a profile sizes it from a
   * step's dispatch count; query sets of 2048 dispatches are created as
   * needed).
   */
  startTiming(maxDispatches = 256): boolean {
    if (!this.device.hasTimestamps) return false;
    this.flush();
    for (const set of this.#timestamps?.querySets ?? []) set.destroy();
    this.#timestamps = { querySets: [], max: Math.max(1, maxDispatches), op: [], kernel: [] };
    return true;
  }

  /** Ends timing; returns `[label, nanoseconds, kernel name]` per timed dispatch, in order. */
  async stopTiming(): Promise<[string, number, string][]> {
    const ts = this.#timestamps;
    this.#timestamps = undefined;
    if (!ts || ts.op.length === 0) {
      for (const set of ts?.querySets ?? []) set.destroy();
      return [];
    }
    const n = ts.op.length * 2;
    const resolve = this.createBuffer({
      size: n * 8,
      usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC,
    });
    this.#encoder ??= this.#gpu.createCommandEncoder();
    ts.querySets.forEach((set, k) => {
      const count = Math.min(2 * QUERY_SET_DISPATCHES, n - 2 * k * QUERY_SET_DISPATCHES);
      this.#encoder!.resolveQuerySet(set, 0, count, resolve, 2 * k * QUERY_SET_DISPATCHES * 8);
    });
    const raw = new BigUint64Array(await this.read(resolve, n * 8));
    resolve.destroy();
    for (const set of ts.querySets) set.destroy();
    return ts.op.map((op, i) => [op, Number(raw[2 * i + 1]! - raw[2 * i]!), ts.kernel[i]!]);
  }
}

let runtime: Runtime | undefined;

/** The runtime of the current device (after `await getDevice()`). */
export function getRuntime(): Runtime {
  const device = currentDevice();
  if (!runtime || runtime.device !== device) runtime = new Runtime(device);
  return runtime;
}

/**
 * Records a launch of `kernel` on the current device's runtime (see
 * {@link Runtime.launch}); the public entry point for kernels declared
 * outside this package.
 */
export function launch<S, U extends UniformDecl, B extends string>(
  kernel: Kernel<S, U, B>,
  spec: S,
  buffers: BindingValues<B>,
  uniforms: UniformValues<U>,
  workgroups: readonly [number, number?, number?],
  label?: string,
): void {
  getRuntime().launch(kernel, spec, buffers, uniforms, workgroups, label);
}

/** Host-work counters of the current device's runtime (see {@link RuntimeCounters}). */
export function runtimeCounters(): RuntimeCounters {
  return getRuntime().counters();
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

// Not `instanceof GPUBuffer`: Dawn's buffers are not instances of Deno's class.
function isBufferRange(b: Binding): b is { buffer: GPUBuffer; offset?: number; size?: number } {
  return typeof (b as { buffer?: unknown }).buffer === "object";
}
