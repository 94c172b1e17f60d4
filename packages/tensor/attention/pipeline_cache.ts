/**
 * Compiled compute pipelines, cached per device and per kernel configuration
 * (kernel name, head dimension, tile sizes), so each WGSL variant compiles once.
 *
 * @module
 */

const cache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/**
 * Returns the pipeline for `key` on `device`, compiling `source()` the first time.
 * Compilation errors reject with the WGSL compiler's message and the key.
 */
export function cachedPipeline(
  device: GPUDevice,
  key: string,
  source: () => string,
): Promise<GPUComputePipeline> {
  let pipelines = cache.get(device);
  if (pipelines === undefined) {
    pipelines = new Map();
    cache.set(device, pipelines);
  }
  let pipeline = pipelines.get(key);
  if (pipeline === undefined) {
    const code = source();
    const module = device.createShaderModule({ code, label: key });
    pipeline = device.createComputePipelineAsync({
      label: key,
      layout: "auto",
      compute: { module, entryPoint: "main" },
    }).catch(async (error: unknown) => {
      pipelines.delete(key);
      const info = await module.getCompilationInfo?.().catch(() => undefined);
      const messages = info?.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)
        .join("\n") ?? "";
      throw new Error(`attention: compiling pipeline ${key} failed: ${String(error)}\n${messages}`);
    });
    pipelines.set(key, pipeline);
  }
  return pipeline;
}
