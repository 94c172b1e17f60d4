/**
 * The WebGPU device: one per process, requested once with the adapter's full
 * limits and the optional features the kernels can use.
 *
 * @module
 */

/** Thrown when the machine offers no WebGPU adapter at all. */
export class NoGpuError extends Error {
  /** Creates the error with the one-sentence installation advice. */
  constructor(detail?: string) {
    super(
      "No WebGPU adapter was found: install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers` " +
        "on Debian/Ubuntu for the CPU adapter (lavapipe) or your GPU vendor's driver with Vulkan support" +
        (detail ? ` (${detail})` : "") + ".",
    );
    this.name = "NoGpuError";
  }
}

/**
 * Returns the one-sentence message to print for `e` when it is a
 * {@link NoGpuError}, else `undefined`. CLI entry points use it to print the
 * advice instead of a stack trace.
 */
export function describeNoGpu(e: unknown): string | undefined {
  return e instanceof NoGpuError ? e.message : undefined;
}

/** Adapter facts worth printing in logs and benchmarks. */
export interface AdapterDescription {
  /** Vendor id or name as the adapter reports it. */
  vendor: string;
  /** Architecture, often empty. */
  architecture: string;
  /** Human readable description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  description: string;
  /** True for software (CPU) adapters such as lavapipe. */
  isFallbackAdapter: boolean;
}

/** The requested device plus what it offers. */
export interface Device {
  /** The raw WebGPU device (the attention kernels dispatch on it directly). */
  readonly gpu: GPUDevice;
  /** What the adapter says about itself. */
  readonly adapter: AdapterDescription;
  /** Features enabled on the device. */
  readonly features: ReadonlySet<string>;
  /** Limits granted to the device (the adapter's maxima). */
  readonly limits: GPUSupportedLimits;
  /** Whether `shader-f16` is enabled. */
  readonly hasF16: boolean;
  /** Whether `timestamp-query` is enabled. */
  readonly hasTimestamps: boolean;
  /** True on CPU adapters (lavapipe/llvmpipe/SwiftShader): pick tiny shapes. */
  readonly isCpuAdapter: boolean;
}

// The limits worth raising to the adapter's maximum.
const LIMIT_NAMES = [
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBuffersPerShaderStage",
  "maxBindingsPerBindGroup",
  "maxBindGroups",
] as const;

let devicePromise: Promise<Device> | undefined;
let current: Device | undefined;

/**
 * Requests (once) the high-performance adapter and a device with its full
 * limits, `shader-f16` and `timestamp-query` when offered. Await it once
 * before creating tensors; later calls return the same device.
 *
 * @throws {NoGpuError} when no adapter exists.
 */
export function getDevice(): Promise<Device> {
  devicePromise ??= requestDevice().catch((e) => {
    devicePromise = undefined;
    throw e;
  });
  return devicePromise;
}

/**
 * The device {@link getDevice} resolved to; ops use it synchronously.
 *
 * @throws when `await getDevice()` has not completed yet.
 */
export function currentDevice(): Device {
  if (!current) throw new Error("no GPU device yet: call `await getDevice()` before using tensors");
  return current;
}

async function requestDevice(): Promise<Device> {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new NoGpuError("this runtime has no navigator.gpu");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new NoGpuError();
  const requiredLimits: Record<string, number> = {};
  const offered = adapter.limits as unknown as Record<string, number>;
  for (const name of LIMIT_NAMES) {
    const value = offered[name];
    if (typeof value === "number") requiredLimits[name] = value;
  }
  const wanted: GPUFeatureName[] = ["shader-f16", "timestamp-query"];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const gpu = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info;
  const description: AdapterDescription = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
  const cpuName = /llvmpipe|lavapipe|swiftshader|software/i.test(info.description);
  current = {
    gpu,
    adapter: description,
    features: new Set([...gpu.features] as string[]),
    limits: gpu.limits,
    hasF16: gpu.features.has("shader-f16"),
    hasTimestamps: gpu.features.has("timestamp-query"),
    isCpuAdapter: description.isFallbackAdapter || cpuName,
  };
  return current;
}
