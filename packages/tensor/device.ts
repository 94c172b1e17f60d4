/**
 * The WebGPU device: one per process, requested once with the adapter's full
 * limits and the optional features the kernels can use, from one of two
 * WebGPU providers:
 *
 * - `deno`: Deno's built-in `navigator.gpu` (wgpu). No subgroups, no matrix units.
 * - `dawn`: Dawn, the WebGPU implementation inside Chrome, through its Node-API
 *   binding (npm `webgpu`, pinned in the root import map). It offers `subgroups`
 *   and, where the driver has cooperative matrices, `chromium-experimental-subgroup-matrix`.
 *
 * `IRFORGE_WEBGPU=auto|deno|dawn` chooses (default `auto`: Dawn when it yields
 * a hardware adapter, else Deno's). When Dawn cannot load or gives no adapter,
 * one line on stderr says why and Deno's provider is used.
 *
 * @example Which provider and adapter a process got
 * ```ts ignore
 * import { describeDevice, getDevice } from "@irforge/tensor";
 *
 * const device = await getDevice();
 * console.log(describeDevice(device)); // "webgpu dawn · NVIDIA H200 · subgroups 32 · …"
 * ```
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

/** A WebGPU implementation irforge can run on. */
export type WebGpuProvider = "deno" | "dawn";

/** What `IRFORGE_WEBGPU` may say. */
export type WebGpuProviderChoice = "auto" | WebGpuProvider;

/** One subgroup-matrix shape the adapter supports (`adapter.info.subgroupMatrixConfigs`). */
export interface SubgroupMatrixConfig {
  /** Operand component type, e.g. `f16`. */
  componentType: string;
  /** Result component type, e.g. `f32`. */
  resultComponentType: string;
  /** Rows of the left operand and the result. */
  M: number;
  /** Columns of the right operand and the result. */
  N: number;
  /** Columns of the left operand, rows of the right. */
  K: number;
}

/** The requested device plus what it offers. */
export interface Device {
  /** The raw WebGPU device (the attention kernels dispatch on it directly). */
  readonly gpu: GPUDevice;
  /** Which WebGPU implementation the device comes from. */
  readonly provider: WebGpuProvider;
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
  /**
   * Whether `subgroups` is enabled together with the `subgroup_id` and
   * `num_subgroups` builtins (WGSL language feature `subgroup_id`), which the
   * subgroup reductions index their partials by.
   */
  readonly subgroups: boolean;
  /** Smallest subgroup size the adapter may use (0 when unknown). */
  readonly subgroupMinSize: number;
  /** Largest subgroup size the adapter may use (0 when unknown). */
  readonly subgroupMaxSize: number;
  /** Whether `chromium-experimental-subgroup-matrix` is enabled. */
  readonly subgroupMatrix: boolean;
  /** Subgroup-matrix shapes the adapter lists (empty without the feature). */
  readonly subgroupMatrixConfigs: readonly SubgroupMatrixConfig[];
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
// Dawn's instance must outlive its devices: collecting it crashes the process.
const dawnInstances: GPU[] = [];

/** Dawn toggles irforge sets (see the package README). */
export const DAWN_TOGGLES = [
  // Experimental features: chromium-experimental-subgroup-matrix.
  "allow_unsafe_apis",
  // NVIDIA's Vulkan driver otherwise hides shader-f16 from Dawn.
  "vulkan_enable_f16_on_nvidia",
  // Cooperative matrices require the Vulkan memory model in SPIR-V.
  "use_vulkan_memory_model",
] as const;

/** Features requested whenever the adapter offers them. */
const OPTIONAL_FEATURES = [
  "shader-f16",
  "timestamp-query",
  "subgroups",
  "chromium-experimental-subgroup-matrix",
] as const;

/**
 * Reads `IRFORGE_WEBGPU` (`auto` when unset or empty).
 *
 * @throws {Error} naming the variable when its value is not auto, deno or dawn.
 */
export function providerChoice(
  value: string | undefined = Deno.env.get("IRFORGE_WEBGPU"),
): WebGpuProviderChoice {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (v === "deno" || v === "dawn") return v;
  throw new Error(
    `IRFORGE_WEBGPU must be auto, deno or dawn, got ${JSON.stringify(value)}`,
  );
}

/**
 * Requests (once) the high-performance adapter of the chosen provider and a
 * device with its full limits and the optional features it offers
 * (`shader-f16`, `timestamp-query`, `subgroups`, subgroup matrices). Await
 * it once before creating tensors; later calls return the same device.
 *
 * @throws {NoGpuError} when no adapter exists.
 *
 * @example Pick the device, then compute
 * ```ts
 * import { add, getDevice, tensor } from "@irforge/tensor";
 *
 * const device = await getDevice();
 * console.log(device.adapter.description, device.hasF16 ? "f16" : "f32 only");
 * const sum = add(tensor([1, 2, 3], [3]), tensor([10, 20, 30], [3]));
 * console.log(await sum.toArray()); // Float32Array [11, 22, 33]
 * ```
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

/** One line naming provider, adapter, subgroup sizes and the enabled features. */
export function describeDevice(device: Device): string {
  const sub = device.subgroups
    ? `subgroups ${device.subgroupMinSize}–${device.subgroupMaxSize}`
    : "no subgroups";
  const matrix = device.subgroupMatrix
    ? ` · subgroup matrices ${
      device.subgroupMatrixConfigs.map(describeMatrixConfig).join(", ") || "(no configs listed)"
    }`
    : "";
  return `webgpu ${device.provider} · ${
    device.adapter.description || device.adapter.vendor || "unknown adapter"
  }` +
    `${device.isCpuAdapter ? " (CPU)" : ""} · ${sub}${matrix} · features ${
      [...device.features].sort().join(",")
    }`;
}

/** E.g. `f16→f32 16×16×16` (M×N×K). */
export function describeMatrixConfig(c: SubgroupMatrixConfig): string {
  return `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`;
}

/** Facts about the device for run metadata and benchmark headers (JSON-friendly). */
export interface DeviceFacts {
  /** `deno` or `dawn`. */
  provider: WebGpuProvider;
  /** Adapter vendor. */
  vendor: string;
  /** Adapter architecture. */
  architecture: string;
  /** Adapter description. */
  description: string;
  /** True on CPU adapters. */
  cpu_adapter: boolean;
  /** Enabled features, sorted. */
  features: string[];
  /** `[min, max]` subgroup size, or `null` without subgroups. */
  subgroup_sizes: [number, number] | null;
  /** Subgroup-matrix shapes, e.g. `f16→f32 16×16×16`. */
  subgroup_matrix_configs: string[];
}

/** {@link DeviceFacts} of `device`. */
export function deviceFacts(device: Device): DeviceFacts {
  return {
    provider: device.provider,
    vendor: device.adapter.vendor,
    architecture: device.adapter.architecture,
    description: device.adapter.description,
    cpu_adapter: device.isCpuAdapter,
    features: [...device.features].sort(),
    subgroup_sizes: device.subgroups ? [device.subgroupMinSize, device.subgroupMaxSize] : null,
    subgroup_matrix_configs: device.subgroupMatrixConfigs.map(describeMatrixConfig),
  };
}

/** The `GPU` object of Dawn's Node binding with irforge's toggles, or why not. */
export async function loadDawn(
  extraFlags: readonly string[] = [],
): Promise<{ gpu: GPU } | { error: string }> {
  try {
    // Loaded lazily: the Node-API addon costs ~0.2 s and is absent on some platforms.
    const dawn = await import("webgpu") as { create(flags: string[]): GPU };
    const gpu = dawn.create([`enable-dawn-features=${DAWN_TOGGLES.join(",")}`, ...extraFlags]);
    dawnInstances.push(gpu);
    return { gpu };
  } catch (e) {
    return { error: (e instanceof Error ? e.message : String(e)).split("\n")[0]! };
  }
}

function isCpuInfo(info: GPUAdapterInfo): boolean {
  const fallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  return fallback || /llvmpipe|lavapipe|swiftshader|software/i.test(info.description);
}

async function dawnAdapter(
  choice: WebGpuProviderChoice,
): Promise<GPUAdapter | undefined> {
  const loaded = await loadDawn();
  if ("error" in loaded) {
    console.error(`irforge: Dawn (npm:webgpu) cannot load (${loaded.error}); using Deno's WebGPU`);
    return undefined;
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await loaded.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    console.error(
      `irforge: Dawn found no adapter (${(e as Error).message}); using Deno's WebGPU`,
    );
    return undefined;
  }
  if (!adapter) {
    console.error(
      "irforge: Dawn found no adapter (no driver it accepts; lavapipe needs Mesa 25); using Deno's WebGPU",
    );
    return undefined;
  }
  // auto takes Dawn only for hardware; on CPU adapters Deno's is the tested default.
  if (choice === "auto" && isCpuInfo(adapter.info)) return undefined;
  return adapter;
}

async function requestDevice(): Promise<Device> {
  const choice = providerChoice();
  let provider: WebGpuProvider = "deno";
  let adapter: GPUAdapter | null | undefined;
  const denoAdapter = async () => {
    if (typeof navigator === "undefined" || !navigator.gpu) return null;
    return await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  };
  if (choice === "deno") {
    adapter = await denoAdapter();
  } else if (choice === "dawn") {
    adapter = await dawnAdapter(choice);
    if (adapter) provider = "dawn";
    else adapter = await denoAdapter();
  } else {
    // auto: where Deno sees only a CPU adapter there is no GPU for Dawn either,
    // so the Dawn probe (~0.6 s per process) is skipped.
    adapter = await denoAdapter();
    if (!adapter || !isCpuInfo(adapter.info)) {
      const dawn = await dawnAdapter(choice);
      if (dawn) [adapter, provider] = [dawn, "dawn"];
    }
  }
  if (!adapter && typeof navigator === "undefined") {
    throw new NoGpuError("this runtime has no navigator.gpu and Dawn found no adapter");
  }
  if (!adapter) throw new NoGpuError();
  const requiredLimits: Record<string, number> = {};
  const offered = adapter.limits as unknown as Record<string, number>;
  for (const name of LIMIT_NAMES) {
    const value = offered[name];
    if (typeof value === "number") requiredLimits[name] = value;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) =>
    adapter.features.has(f)
  ) as GPUFeatureName[];
  const gpu = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[];
  };
  const description: AdapterDescription = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
  const subgroups = gpu.features.has("subgroups") &&
    (provider === "dawn" ? dawnInstances.at(-1) : navigator.gpu)?.wgslLanguageFeatures
        ?.has("subgroup_id") === true;
  const subgroupMatrix = gpu.features.has("chromium-experimental-subgroup-matrix");
  current = {
    gpu,
    provider,
    adapter: description,
    features: new Set([...gpu.features] as string[]),
    limits: gpu.limits,
    hasF16: gpu.features.has("shader-f16"),
    hasTimestamps: gpu.features.has("timestamp-query"),
    isCpuAdapter: isCpuInfo(info),
    subgroups,
    subgroupMinSize: subgroups ? info.subgroupMinSize ?? 0 : 0,
    subgroupMaxSize: subgroups ? info.subgroupMaxSize ?? 0 : 0,
    subgroupMatrix,
    subgroupMatrixConfigs: subgroupMatrix
      ? (info.subgroupMatrixConfigs ?? []).map((c) => ({
        componentType: c.componentType,
        resultComponentType: c.resultComponentType,
        M: c.M,
        N: c.N,
        K: c.K,
      }))
      : [],
  };
  return current;
}
