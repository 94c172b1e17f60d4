/**
 * The subgroup-matrix matmul: its WGSL validated by Dawn's `backend=null`
 * adapter wherever npm:webgpu loads (no GPU needed: shader-module errors,
 * deprecation warnings and pipeline-creation errors), and its results
 * compared with the float64 reference on f16-rounded operands where the
 * device has subgroup matrices (skipped with the reason elsewhere).
 */
import assert from "node:assert/strict";
import { getDevice, loadDawn } from "../device.ts";
import { kernelSource } from "../kernel.ts";
import { Tensor } from "../tensor.ts";
import { randnArray } from "../random.ts";
import { assertClose } from "../testing/assert_close.ts";
import { matmul } from "./matmul.ts";
import { refMatmul } from "./matmul_reference.ts";
import {
  SUBGROUP_MATRIX_MATMUL,
  subgroupMatrixAvailable,
  subgroupMatrixMatmul,
  subgroupMatrixSpec,
  subgroupMatrixUnavailableReason,
} from "./matmul_subgroup_matrix.ts";

const dawn = await loadDawn(["backend=null"]);
const nullDevice = "error" in dawn ? undefined : await (async () => {
  const adapter = await dawn.gpu.requestAdapter();
  if (!adapter) return undefined;
  const device = await adapter.requestDevice({
    requiredFeatures: [
      "shader-f16",
      "subgroups",
      "chromium-experimental-subgroup-matrix",
    ] as GPUFeatureName[],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    },
  });
  const info = adapter.info as GPUAdapterInfo & { subgroupMaxSize?: number };
  return { device, subgroupMaxSize: info.subgroupMaxSize ?? 0 };
})();

Deno.test({
  name: "subgroup-matrix matmul WGSL compiles on Dawn's null backend without warnings",
  ignore: nullDevice === undefined,
  fn: async () => {
    const { device, subgroupMaxSize } = nullDevice!;
    assert.ok(subgroupMaxSize > 0);
    // The configurations drivers list today: NVIDIA/AMD 16×16×16, Apple 8×8×8, Intel 8×16×16.
    const configs = [{ M: 16, N: 16, K: 16 }, { M: 8, N: 8, K: 8 }, { M: 8, N: 16, K: 16 }];
    const operandCases = [
      { aType: "f16", bType: "f16", transA: false, transB: true },
      { aType: "f16", bType: "f16", transA: true, transB: false },
      { aType: "f32", bType: "f16", transA: false, transB: false },
      { aType: "f32", bType: "f32", transA: true, transB: true },
    ] as const;
    for (const config of configs) {
      for (const operands of operandCases) {
        const spec = subgroupMatrixSpec(
          config,
          { subgroupMaxSize, limits: device.limits },
          operands,
        );
        assert.equal(spec.threads % subgroupMaxSize, 0, "x size a multiple of subgroupMaxSize");
        const code = kernelSource(SUBGROUP_MATRIX_MATMUL, spec);
        assert.match(code, /^enable chromium_experimental_subgroup_matrix;$/m);
        const module = device.createShaderModule({ code });
        const messages = (await module.getCompilationInfo()).messages.map((m) =>
          `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`
        );
        const label = `${SUBGROUP_MATRIX_MATMUL.key(spec)}`;
        assert.deepEqual(messages, [], `${label}: ${messages.join("\n")}`);
        device.pushErrorScope("validation");
        device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
        const error = await device.popErrorScope();
        assert.equal(error, null, `${label}: ${error?.message}`);
      }
    }
  },
});

Deno.test({
  name: "the old (deprecated) load/store spelling is what Dawn warns about",
  ignore: nullDevice === undefined,
  fn: async () => {
    // Guards the test above: the null backend does report deprecations.
    const { device } = nullDevice!;
    const module = device.createShaderModule({
      code: `enable f16;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> C: array<f32>;
var<workgroup> t: array<f16, 256>;
@compute @workgroup_size(128)
fn main() {
  let l = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&t, 0, false, 16);
  let r = subgroup_matrix_right<f16, 16, 16>();
  subgroupMatrixStore(&C, 0, subgroupMatrixMultiply<f32>(l, r), false, 16);
}`,
    });
    const warnings = (await module.getCompilationInfo()).messages.filter((m) =>
      m.type === "warning"
    );
    assert.ok(warnings.some((m) => /deprecated/.test(m.message)));
  },
});

const gpu = await getDevice().catch(() => undefined);
const unavailable = gpu === undefined ? "no WebGPU adapter" : subgroupMatrixUnavailableReason(gpu);
if (gpu && unavailable) console.warn(`skipping subgroup-matrix matmul runs: ${unavailable}`);

const f16Round = (xs: ArrayLike<number>) => Float64Array.from(Float16Array.from(xs));

Deno.test({
  name: "subgroupMatrixMatmul equals float64 on f16-rounded operands",
  ignore: unavailable !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Edges in every dimension, transposes, f32 operands, a broadcast 2-D operand.
    const cases = [
      { batch: 1, M: 37, N: 45, K: 50, tA: false, tB: true, aB: false, bB: false, f32: false },
      { batch: 1, M: 64, N: 64, K: 64, tA: false, tB: false, aB: false, bB: false, f32: false },
      { batch: 2, M: 19, N: 70, K: 33, tA: true, tB: false, aB: true, bB: false, f32: false },
      { batch: 3, M: 16, N: 9, K: 130, tA: true, tB: true, aB: true, bB: true, f32: true },
    ];
    for (const [i, d] of cases.entries()) {
      const aShape = d.tA ? [d.K, d.M] : [d.M, d.K], bShape = d.tB ? [d.N, d.K] : [d.K, d.N];
      const aData = f16Round(randnArray((d.aB ? d.batch : 1) * d.M * d.K, 31 + i));
      const bData = f16Round(randnArray((d.bB ? d.batch : 1) * d.K * d.N, 41 + i));
      const dtype = d.f32 ? "f32" : "f16";
      const a = Tensor.fromArray(aData, d.aB ? [d.batch, ...aShape] : aShape, dtype);
      const b = Tensor.fromArray(bData, d.bB ? [d.batch, ...bShape] : bShape, dtype);
      const c = subgroupMatrixMatmul(a, b, { transA: d.tA, transB: d.tB });
      const expected = refMatmul(aData, bData, d);
      // f16 products are exact in f32; only the f32 summation order differs.
      assertClose(await c.toArray(), expected, 1e-4, `case ${i} ${JSON.stringify(d)}`);
      for (const t of [a, b, c]) t.dispose();
    }
  },
});

Deno.test({
  name: "matmul routes f16×f16 to the subgroup matrices where available",
  ignore: unavailable !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert.ok(subgroupMatrixAvailable(gpu!));
    const aData = f16Round(randnArray(24 * 40, 51)), bData = f16Round(randnArray(40 * 20, 52));
    const a = Tensor.fromArray(aData, [24, 40], "f16");
    const b = Tensor.fromArray(bData, [40, 20], "f16");
    const c = matmul(a, b);
    const expected = refMatmul(aData, bData, {
      batch: 1,
      M: 24,
      N: 20,
      K: 40,
      tA: false,
      tB: false,
      aB: false,
      bB: false,
    });
    assertClose(await c.toArray(), expected, 1e-4, "matmul f16×f16");
    for (const t of [a, b, c]) t.dispose();
  },
});

Deno.test("subgroupMatrixUnavailableReason names what is missing", () => {
  const base = {
    provider: "dawn",
    subgroupMatrix: true,
    hasF16: true,
    subgroups: true,
    subgroupMatrixConfigs: [{ componentType: "f16", resultComponentType: "f16", M: 8, N: 8, K: 8 }],
  } as unknown as Parameters<typeof subgroupMatrixUnavailableReason>[0];
  assert.match(
    subgroupMatrixUnavailableReason(base)!,
    /no f16→f32 subgroup-matrix configuration \(it lists f16→f16 8×8×8\)/,
  );
  assert.match(
    subgroupMatrixUnavailableReason({ ...base, provider: "deno", subgroupMatrix: false })!,
    /deno's adapter offers no chromium-experimental-subgroup-matrix/,
  );
  const ok = {
    ...base,
    subgroupMatrixConfigs: [{
      componentType: "f16",
      resultComponentType: "f32",
      M: 16,
      N: 16,
      K: 16,
    }],
  };
  assert.equal(subgroupMatrixUnavailableReason(ok), null);
});
