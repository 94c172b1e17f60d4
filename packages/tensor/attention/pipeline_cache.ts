/**
 * Compiled compute pipelines, cached per device and per kernel configuration
 * (kernel name, head dimension, tile sizes), so each WGSL variant compiles once.
 *
 * Compilation is synchronous (`createComputePipeline`) so the kernels can run
 * inside the engine's synchronous autograd ops; WGSL errors surface through
 * the device's error scopes / `uncapturederror` with the pipeline key as label.
 *
 * @module
 */

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** Returns the pipeline for `key` on `device`, compiling `source()` the first time. */
export function cachedPipeline(
  device: GPUDevice,
  key: string,
  source: () => string,
): GPUComputePipeline {
  let pipelines = cache.get(device);
  if (pipelines === undefined) {
    pipelines = new Map();
    cache.set(device, pipelines);
  }
  let pipeline = pipelines.get(key);
  if (pipeline === undefined) {
    const module = device.createShaderModule({ code: source(), label: key });
    pipeline = device.createComputePipeline({
      label: key,
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    pipelines.set(key, pipeline);
  }
  return pipeline;
}
