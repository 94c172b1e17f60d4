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
  fragmentBlocks,
  fragmentLoadsPerMma,
  SUBGROUP_MATRIX_MATMUL,
  subgroupMatrixAvailable,
  subgroupMatrixMatmul,
  subgroupMatrixSpec,
  subgroupMatrixUnavailableReason,
  subgroupMatrixWorkgroupBytes,
  subgroupMatrixWorkgroupLoadsPerFma,
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
    // Problems narrower than a tile get fewer fragments (blocks of 1×1 up to 4×4).
    const problems = [undefined, { M: 20, N: 300 }, { M: 5, N: 9 }];
    for (const config of configs) {
      for (const [index, operands] of operandCases.entries()) {
        const spec = subgroupMatrixSpec(
          config,
          { subgroupMaxSize, limits: device.limits },
          operands,
          problems[index % problems.length],
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

Deno.test("fragment blocks: every fragment of the tile has exactly one owner", () => {
  for (const fm of [1, 2, 4, 8]) {
    for (const fn of [1, 2, 4, 8]) {
      for (const minSubgroups of [1, 2, 4, 8]) {
        const b = fragmentBlocks({ fm, fn, minSubgroups });
        // The kernel's assignment: owner sg, block fragment (i, j) → tile fragment (row, col).
        const owned = new Array(fm * fn).fill(0);
        for (let sg = 0; sg < b.owners; sg++) {
          const fr0 = Math.floor(sg / b.gridCols) * b.rows, fc0 = (sg % b.gridCols) * b.cols;
          for (let i = 0; i < b.rows; i++) {
            for (let j = 0; j < b.cols; j++) {
              assert.ok(fr0 + i < fm && fc0 + j < fn, `${fm}×${fn}/${minSubgroups} outside`);
              owned[(fr0 + i) * fn + fc0 + j]++;
            }
          }
        }
        assert.deepEqual(owned, new Array(fm * fn).fill(1), `${fm}×${fn} over ${minSubgroups}`);
      }
    }
  }
  // Square blocks load least: 4×4 → 0.5 loads per multiply-accumulate, 2×8 → 0.625.
  assert.deepEqual(fragmentBlocks({ fm: 8, fn: 8, minSubgroups: 4 }), {
    owners: 4,
    gridCols: 2,
    rows: 4,
    cols: 4,
  });
  assert.equal(fragmentLoadsPerMma({ rows: 4, cols: 4 }), 0.5);
  assert.equal(fragmentLoadsPerMma({ rows: 1, cols: 1 }), 2);
});

Deno.test("subgroupMatrixSpec on an H200-like device: 128×128 tiles, 4 warps of 4×4 fragments", () => {
  const h200 = {
    subgroupMaxSize: 32,
    limits: {
      maxComputeWorkgroupStorageSize: 48 * 1024,
      maxComputeInvocationsPerWorkgroup: 1024,
    } as GPUSupportedLimits,
  };
  const operands = { aType: "f16", bType: "f16", transA: false, transB: true } as const;
  const config = { M: 16, N: 16, K: 16 };
  const spec = subgroupMatrixSpec(config, h200, operands);
  assert.deepEqual(
    [spec.fm, spec.fn, spec.ks, spec.threads, spec.minSubgroups],
    [8, 8, 2, 128, 4],
  );
  assert.equal(fragmentLoadsPerMma(fragmentBlocks(spec)), 0.5);
  // (4·16 + 4·16) elements per 4·4·16·16 FMAs of a K step: 1/32 (one fragment pair: 1/8).
  assert.equal(subgroupMatrixWorkgroupLoadsPerFma(spec), 1 / 32);
  assert.equal(
    subgroupMatrixWorkgroupLoadsPerFma({ m0: 16, n0: 16, fm: 1, fn: 1, minSubgroups: 1 }),
    1 / 8,
  );
  // f16 A 128×32 and B 32×128 tiles (16 KiB) + one f32 16×16 fragment per warp (4 KiB).
  assert.equal(subgroupMatrixWorkgroupBytes(spec), 20 * 1024);
  // A LoRA-rank product (N = 16) gets one fragment column; a small workgroup memory shrinks.
  const narrow = subgroupMatrixSpec(config, h200, operands, { M: 4096, N: 16 });
  assert.deepEqual([narrow.fm, narrow.fn], [8, 1]);
  const small = subgroupMatrixSpec(config, {
    ...h200,
    limits: { ...h200.limits, maxComputeWorkgroupStorageSize: 16384 } as GPUSupportedLimits,
  }, operands);
  assert.deepEqual([small.fm, small.fn, small.ks], [8, 8, 1]);
  assert.ok(subgroupMatrixWorkgroupBytes(small) <= 16384);
});
