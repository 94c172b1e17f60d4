/**
 * Plumbing shared by the attention dispatch functions: shape and buffer checks,
 * output allocation, uniform upload and "submit now or record into the
 * caller's encoder".
 *
 * @module
 */

import { BufferUsage } from "./gpu_flags.ts";
import { type KernelParams, packParams } from "./wgsl_common.ts";

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

/** Throws unless `buffer` holds at least `floats` f32 values. */
export function checkBuffer(name: string, buffer: GPUBuffer, floats: number, shape: string): void {
  if (buffer.size < floats * 4) {
    throw new RangeError(
      `attention: buffer "${name}" has ${buffer.size} bytes, needs ${floats * 4} for ${shape} f32`,
    );
  }
}

/** Resources of one call: temporaries to free and the encoder to record into. */
export class CallScope {
  /** Encoder the passes are recorded into. */
  readonly encoder: GPUCommandEncoder;
  readonly #device: GPUDevice;
  readonly #ownsEncoder: boolean;
  readonly #temporaries: GPUBuffer[] = [];

  /** Records into `encoder` when given, else into a new one submitted by {@linkcode finish}. */
  constructor(device: GPUDevice, encoder: GPUCommandEncoder | undefined) {
    this.#device = device;
    this.#ownsEncoder = encoder === undefined;
    this.encoder = encoder ?? device.createCommandEncoder({ label: "attention" });
  }

  /** A zero-filled storage buffer of `floats` f32 values; freed by dispose when `temporary`. */
  storage(label: string, floats: number, temporary: boolean): GPUBuffer {
    const buffer = this.#device.createBuffer({
      label,
      size: Math.max(4, floats * 4),
      usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
    });
    if (temporary) this.#temporaries.push(buffer);
    return buffer;
  }

  /** An uploaded int32 storage buffer (temporary). */
  int32(label: string, values: Int32Array): GPUBuffer {
    const buffer = this.#device.createBuffer({
      label,
      size: Math.max(4, values.byteLength),
      usage: BufferUsage.STORAGE | BufferUsage.COPY_DST,
    });
    this.#device.queue.writeBuffer(buffer, 0, values);
    this.#temporaries.push(buffer);
    return buffer;
  }

  /** A uniform buffer holding `params` (temporary). */
  params(params: KernelParams): GPUBuffer {
    const buffer = this.#device.createBuffer({
      label: "attention params",
      size: 48,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
    });
    this.#device.queue.writeBuffer(buffer, 0, packParams(params));
    this.#temporaries.push(buffer);
    return buffer;
  }

  /** Records one compute pass of `pipeline` over `buffers` (binding i = buffers[i]). */
  dispatch(
    pipeline: GPUComputePipeline,
    buffers: GPUBuffer[],
    workgroups: [number, number, number],
  ): void {
    const bindGroup = this.#device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = this.encoder.beginComputePass({ label: pipeline.label });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroups);
    pass.end();
  }

  /** Records a pass over `count` independent items, 64 per workgroup, in a 2-D grid. */
  dispatchFlat(pipeline: GPUComputePipeline, buffers: GPUBuffer[], count: number): void {
    const groups = Math.max(1, Math.ceil(count / 64));
    const x = Math.min(groups, 65535);
    this.dispatch(pipeline, buffers, [x, Math.ceil(groups / x), 1]);
  }

  /**
   * Submits the work when this scope made the encoder (and frees temporaries);
   * otherwise returns a dispose function to call after the caller submits.
   */
  finish(): () => void {
    const dispose = () => {
      for (const buffer of this.#temporaries) buffer.destroy();
      this.#temporaries.length = 0;
    };
    if (!this.#ownsEncoder) return dispose;
    this.#device.queue.submit([this.encoder.finish()]);
    dispose();
    return () => {};
  }
}

/** Grid dimension check: WebGPU allows at most 65535 workgroups per dimension. */
export function checkGrid(what: string, value: number): void {
  if (value > 65535) {
    throw new RangeError(`attention: ${what} = ${value} exceeds 65535 workgroups per dimension`);
  }
}
