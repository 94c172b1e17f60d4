/**
 * One way to declare a compute kernel: {@link defineKernel} names its
 * uniforms (the WGSL `Params` struct is generated from them and packed by
 * name), its storage bindings (declared for the kernel, in order) and a
 * source generator with a cache key; `Runtime.launch` builds the WGSL only
 * when the pipeline cache has no entry for `(name, key(spec))`.
 *
 * @example Declare and launch a kernel
 * ```ts ignore
 * import { defineKernel, getDevice, getRuntime, Tensor } from "@irforge/tensor";
 *
 * const scale = defineKernel({
 *   name: "scale",
 *   key: (s: { t: "f32" | "f16" }) => s.t,
 *   uniforms: { n: "u32", factor: "f32" },
 *   bindings: (s) => ({ Y: { type: `array<${s.t}>`, access: "read_write" }, X: { type: `array<${s.t}>` } }),
 *   source: (s) => `
 * @compute @workgroup_size(64)
 * fn main(@builtin(global_invocation_id) g: vec3<u32>) {
 *   if (g.x < P.n) { Y[g.x] = ${s.t}(f32(X[g.x]) * P.factor); }
 * }`,
 * });
 * await getDevice();
 * const x = Tensor.fromArray([1, 2, 3], [3]);
 * const y = Tensor.empty([3]);
 * getRuntime().launch(scale, { t: "f32" }, { Y: y.buffer, X: x.buffer }, { n: 3, factor: 2 }, [1]);
 * ```
 *
 * @module
 */

/** Scalar types a uniform field may have. */
export type UniformType = "u32" | "i32" | "f32";

/** Uniform fields by name, in declaration order (the WGSL struct's order). */
export type UniformDecl = Readonly<Record<string, UniformType>>;

/** Values for every uniform field of `U`. */
export type UniformValues<U extends UniformDecl> = { readonly [K in keyof U]: number };

/** One storage binding: its WGSL store type and access. */
export interface BindingDecl {
  /** WGSL type of the variable, e.g. `array<f32>` or `array<vec4<f16>>`. */
  type: string;
  /** `read` (default) or `read_write`. */
  access?: "read" | "read_write";
}

/** A buffer bound to a kernel, optionally a byte range of it. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** Buffers for a kernel's bindings, by binding name. */
export type BindingValues<B extends string> = { readonly [K in B]?: Binding };

/** What {@link defineKernel} takes. */
export interface KernelDefinition<S, U extends UniformDecl, B extends string> {
  /** Kernel name: op name in errors, timings and profiles; part of the pipeline key. */
  name: string;
  /** Cache key of a specialisation: two specs with the same key must generate the same WGSL. */
  key(spec: S): string;
  /** Uniform fields; read in WGSL as `P.<name>`. */
  uniforms: U;
  /** Storage bindings of a specialisation, in binding order (object key order). */
  bindings(spec: S): { readonly [K in B]?: BindingDecl };
  /**
   * The WGSL after the generated preamble (enables, `Params`, bindings):
   * helpers, workgroup variables and `fn main`.
   */
  source(spec: S): string;
}

/** A declared kernel (see {@link defineKernel}). */
export interface Kernel<S, U extends UniformDecl, B extends string>
  extends KernelDefinition<S, U, B> {
  /** Byte size of the packed uniform block (a multiple of 16). */
  readonly uniformBytes: number;
  /** Field byte offsets, by name. */
  readonly uniformOffsets: Readonly<Record<string, number>>;
}

/** Any kernel, for registries and runtime plumbing. */
// deno-lint-ignore no-explicit-any
export type AnyKernel = Kernel<any, UniformDecl, string>;

/** Largest uniform block a kernel may declare (one slot of the runtime's uniform ring). */
export const MAX_UNIFORM_BYTES = 256;

const kernels = new Map<string, AnyKernel>();

/** Every kernel declared so far, by name (the kernel lab and tests walk it). */
export function registeredKernels(): AnyKernel[] {
  return [...kernels.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Declares a kernel. Names are unique: declaring a name twice throws (a
 * copy-pasted kernel would otherwise share pipelines with another).
 */
export function defineKernel<S, U extends UniformDecl, B extends string>(
  def: KernelDefinition<S, U, B>,
): Kernel<S, U, B> {
  if (kernels.has(def.name)) throw new Error(`kernel "${def.name}" is defined twice`);
  const uniformOffsets: Record<string, number> = {};
  let at = 0;
  for (const [field, type] of Object.entries(def.uniforms)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) {
      throw new Error(`kernel "${def.name}": uniform "${field}" is not a WGSL identifier`);
    }
    if (type !== "u32" && type !== "i32" && type !== "f32") {
      throw new Error(`kernel "${def.name}": uniform "${field}" has type ${type}`);
    }
    uniformOffsets[field] = at;
    at += 4;
  }
  const uniformBytes = Math.max(16, Math.ceil(at / 16) * 16);
  if (uniformBytes > MAX_UNIFORM_BYTES) {
    throw new Error(
      `kernel "${def.name}": ${at} bytes of uniforms exceed ${MAX_UNIFORM_BYTES}`,
    );
  }
  const kernel: Kernel<S, U, B> = { ...def, uniformBytes, uniformOffsets };
  kernels.set(def.name, kernel as AnyKernel);
  return kernel;
}

/** The generated WGSL `Params` struct and its uniform variable `P` at `binding`. */
export function uniformBlock(uniforms: UniformDecl, binding: number): string {
  const fields = Object.entries(uniforms).map(([name, type]) => `  ${name}: ${type},`);
  // WGSL structs cannot be empty; an unused pad keeps the layout valid.
  if (fields.length === 0) fields.push("  unused_: u32,");
  return `struct Params {\n${fields.join("\n")}\n}\n` +
    `@group(0) @binding(${binding}) var<uniform> P: Params;\n`;
}

/** The complete WGSL of `kernel` specialised to `spec`. */
export function kernelSource<S, U extends UniformDecl, B extends string>(
  kernel: Kernel<S, U, B>,
  spec: S,
): string {
  const bindings = Object.entries(kernel.bindings(spec)) as [string, BindingDecl | undefined][];
  const declared = bindings.filter(([, d]) => d !== undefined) as [string, BindingDecl][];
  const decls = declared.map(([name, d], i) =>
    `@group(0) @binding(${i}) var<storage, ${d.access ?? "read"}> ${name}: ${d.type};`
  );
  const body = kernel.source(spec);
  const text = decls.join("\n") + body;
  // Extensions the text uses, enabled before any declaration (WGSL requires it).
  const enable = (/\bf16\b/.test(text) ? "enable f16;\n" : "") +
    (/\bsubgroup[A-Z]\w*\s*\(|@builtin\((subgroup_|num_subgroups)/.test(text)
      ? "enable subgroups;\n"
      : "") +
    (/\bsubgroup_matrix_(left|right|result)\b/.test(text)
      ? "enable chromium_experimental_subgroup_matrix;\n"
      : "");
  return `${enable}// kernel ${kernel.name} [${kernel.key(spec)}]\n${
    uniformBlock(kernel.uniforms, declared.length)
  }${decls.join("\n")}\n${body}\n`;
}

/** Names of the bindings `spec` declares, in binding order. */
export function bindingNames<S, U extends UniformDecl, B extends string>(
  kernel: Kernel<S, U, B>,
  spec: S,
): B[] {
  return (Object.entries(kernel.bindings(spec)) as [B, BindingDecl | undefined][])
    .filter(([, d]) => d !== undefined).map(([name]) => name);
}

/**
 * Packs `values` into `view` at `byteOffset` by field name; every declared
 * field must be given a finite-or-float value (u32/i32 must be integers).
 */
export function packUniforms<U extends UniformDecl>(
  kernel: { name: string; uniforms: U; uniformOffsets: Readonly<Record<string, number>> },
  values: UniformValues<U>,
  view: DataView,
  byteOffset: number,
): void {
  for (const [field, type] of Object.entries(kernel.uniforms)) {
    const v = (values as Record<string, number | undefined>)[field];
    if (v === undefined) throw new Error(`kernel "${kernel.name}": uniform "${field}" not given`);
    const at = byteOffset + kernel.uniformOffsets[field]!;
    if (type === "f32") {
      view.setFloat32(at, v, true);
    } else if (!Number.isInteger(v)) {
      throw new Error(`kernel "${kernel.name}": uniform "${field}" (${type}) = ${v}`);
    } else if (type === "u32") {
      view.setUint32(at, v >>> 0, true);
    } else {
      view.setInt32(at, v, true);
    }
  }
  for (const field of Object.keys(values)) {
    if (!(field in kernel.uniforms)) {
      throw new Error(`kernel "${kernel.name}": unknown uniform "${field}"`);
    }
  }
}
