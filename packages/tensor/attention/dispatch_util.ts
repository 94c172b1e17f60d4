/**
 * Plumbing shared by the attention dispatch functions: shape and buffer checks,
 * output allocation, temporaries and launches through the runtime.
 *
 * @module
 */

import type { BindingValues, Kernel } from "../kernel.ts";
import { getRuntime, type Runtime } from "../runtime.ts";
import { BufferUsage } from "./gpu_flags.ts";
import { type AttentionElement, elementBytes } from "./wgsl_blocks.ts";
import { ATTENTION_UNIFORMS, attentionUniforms, type KernelParams } from "./wgsl_common.ts";

/** Head layout common to every attention call. */
export interface AttentionShape {
  /** Query heads (Hq). */
  heads: number;
  /** Key/value heads (Hkv); must divide `heads` (grouped-query attention). */
  kvHeads: number;
  /** Head dimension (D), 1..256. */
  headDim: number;
  /** Score scale; default 1/√D. */
  scale?: number;
}

/** Checks the head layout and returns the effective scale. */
export function checkShape(shape: AttentionShape): number {
  const { heads, kvHeads, headDim } = shape;
  for (const [name, value] of [["heads", heads], ["kvHeads", kvHeads], ["headDim", headDim]]) {
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new RangeError(`attention: ${name} must be a positive integer, got ${value}`);
    }
  }
  if (heads % kvHeads !== 0) {
    throw new RangeError(`attention: kvHeads ${kvHeads} must divide heads ${heads}`);
  }
  if (headDim > 256) throw new RangeError(`attention: headDim ${headDim} > 256 is not supported`);
  const scale = shape.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale)) throw new RangeError(`attention: scale ${scale} is not finite`);
  return scale;
}

/** Throws unless `buffer` holds at least `count` values of `element` (default f32). */
export function checkBuffer(
  name: string,
  buffer: GPUBuffer,
  count: number,
  shape: string,
  element: AttentionElement = "f32",
): void {
  const bytes = count * elementBytes(element);
  if (buffer.size < bytes) {
    throw new RangeError(
      `attention: buffer "${name}" has ${buffer.size} bytes, needs ${bytes} for ${shape} ${element}`,
    );
  }
}

/**
 * Checks that `element` is f32, or f16 on a device with `shader-f16`, and
 * returns it (default f32).
 */
export function checkElement(
  what: string,
  element: AttentionElement | undefined,
  hasF16: boolean,
): AttentionElement {
  const e = element ?? "f32";
  if (e !== "f32" && e !== "f16") {
    throw new RangeError(`attention: ${what} must be "f32" or "f16", got ${e}`);
  }
  if (e === "f16" && !hasF16) {
    throw new RangeError(`attention: ${what} is f16 but the device lacks shader-f16`);
  }
  return e;
}

/**
 * Resources of one call. Everything is recorded into the runtime's command
 * encoder like every other op; temporaries come from the tensor pool and go
 * back to it at {@linkcode CallScope.finish} (safe while queued commands still
 * read them: later reuse is recorded after them).
 */
export class CallScope {
  readonly #runtime: Runtime = getRuntime();
  readonly #temporaries: GPUBuffer[] = [];

  /**
   * A storage buffer of `count` values of `element` (default f32, size
   * rounded up to whole words); a pooled temporary when `temporary`.
   */
  storage(
    label: string,
    count: number,
    temporary: boolean,
    element: AttentionElement = "f32",
  ): GPUBuffer {
    const bytes = Math.max(4, Math.ceil(count * elementBytes(element) / 4) * 4);
    if (temporary) {
      const buffer = this.#runtime.pool.acquire(bytes, label);
      this.#temporaries.push(buffer);
      return buffer;
    }
    // Outputs the caller asked the call to allocate: owned (and destroyed) by the caller.
    const buffer = this.#runtime.createBuffer({
      label,
      size: bytes,
      usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
    });
    return buffer;
  }

  /** An uploaded int32 buffer (pooled temporary). */
  int32(label: string, values: Int32Array): GPUBuffer {
    const buffer = this.#runtime.pool.acquire(Math.max(4, values.byteLength), label);
    if (values.byteLength > 0) this.#runtime.write(buffer, values);
    this.#temporaries.push(buffer);
    return buffer;
  }

  /** Records one launch of `kernel` with the attention uniforms. */
  launch<S, B extends string>(
    kernel: Kernel<S, typeof ATTENTION_UNIFORMS, B>,
    spec: S,
    buffers: BindingValues<B>,
    params: KernelParams,
    workgroups: [number, number, number],
  ): void {
    this.#runtime.launch(kernel, spec, buffers, attentionUniforms(params), workgroups);
  }

  /** Records a launch over `count` independent items, 64 per workgroup, in a 2-D grid. */
  launchFlat<S, B extends string>(
    kernel: Kernel<S, typeof ATTENTION_UNIFORMS, B>,
    spec: S,
    buffers: BindingValues<B>,
    params: KernelParams,
    count: number,
  ): void {
    const groups = Math.max(1, Math.ceil(count / 64));
    const x = Math.min(groups, 65535);
    this.launch(kernel, spec, buffers, params, [x, Math.ceil(groups / x), 1]);
  }

  /** Returns the temporaries to the pool. */
  finish(): void {
    for (const buffer of this.#temporaries) this.#runtime.pool.release(buffer);
    this.#temporaries.length = 0;
  }
}

/** Grid dimension check: WebGPU allows at most 65535 workgroups per dimension. */
export function checkGrid(what: string, value: number): void {
  if (value > 65535) {
    throw new RangeError(`attention: ${what} = ${value} exceeds 65535 workgroups per dimension`);
  }
}
