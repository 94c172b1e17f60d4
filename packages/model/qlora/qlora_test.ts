import assert from "node:assert/strict";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import {
  backward,
  dequantizeNf4Cpu,
  getDevice,
  mul,
  NF4_LEVELS,
  noGrad,
  quantizeNf4Cpu,
  randnArray,
  subgroupMatrixUnavailableReason,
  sum,
  Tensor,
  variable,
} from "@irforge/tensor";
import { assertClose, F32_TOL, gpuTest, relativeError } from "@irforge/tensor/testing";
import { CausalLM } from "../causal_lm.ts";
import { loadCausalLM } from "../load.ts";
import { loadLoraAdapter, readLoraAdapter } from "../lora/io.ts";
import { loraScaling } from "../lora/config.ts";
import { loadModelConfig } from "../config.ts";
import { referenceForward, type ReferenceLora } from "../reference_cpu.ts";
import { causalInputs, disposeInputs } from "../model_inputs.ts";
import { openCheckpoint } from "../safetensors/checkpoint.ts";
import {
  DOUBLE_QUANT_BLOCK,
  doubleDequantize,
  doubleQuantize,
  dynamicMap,
} from "./double_quant.ts";
import { MISTRAL_7B_SHAPE, qloraMemory } from "./memory.ts";
import {
  dequantizeNf4LinearF16,
  Nf4Linear,
  nf4MatrixRoute,
  setNf4MatrixRouteForTesting,
} from "./nf4_linear.ts";
import {
  dequantizeNf4Weight,
  NF4_MAX_GAP,
  nf4BlockScales,
  nf4Layout,
  quantizeNf4Weight,
} from "./nf4_weight.ts";
import { quantizeModelNf4 } from "./quantize_model.ts";
import { bf16BitsToF32, f16BitsToF32, f64ToBf16Bits, f64ToF16Bits } from "../safetensors/half.ts";

Deno.test("NF4 table and dynamic map are bitsandbytes'", () => {
  assert.equal(NF4_LEVELS.length, 16);
  assert.equal(NF4_LEVELS[0], -1);
  assert.equal(NF4_LEVELS[7], 0);
  assert.equal(NF4_LEVELS[15], 1);
  assert.equal(NF4_LEVELS[1], -0.6961928009986877);
  assert.equal(NF4_LEVELS[14], 0.7229568362236023);
  assert.ok(Math.abs(NF4_MAX_GAP - (1 - 0.6961928009986877)) < 1e-12);
  const map = dynamicMap();
  assert.equal(map.length, 256);
  assert.equal(map[255], 1);
  assert.equal(map.filter((v) => v === 0).length, 1);
  for (let i = 1; i < 256; i++) assert.ok(map[i]! > map[i - 1]!, `sorted at ${i}`);
  // Smallest magnitude: 1e-6 · (0.1 + 1)/2 (decade 10^-6 has a single midpoint).
  assert.ok(Math.abs(map[128]! - 5.5e-7) < 1e-12, `${map[128]}`);
  // Largest below 1: 1 · midpoint of the last step of linspace(0.1, 1, 65).
  assert.ok(Math.abs(map[254]! - (1 - 0.9 / 128)) < 1e-6, `${map[254]}`);
});

Deno.test("quantise → dequantise: per-element error within NF4's bound (plain and double-quant)", () => {
  const shape: [number, number] = [37, 150]; // blocks straddle rows; n not a multiple of 64
  const n = shape[0] * shape[1];
  const w = Float32Array.from(randnArray(n, 4, 0, 0.05));
  for (let i = 0; i < n; i += 97) w[i] = w[i]! * 8; // outliers
  const plain = quantizeNf4Weight(w, shape);
  // Our codes are the tensor package's (same packing, nearest level).
  const ref = quantizeNf4Cpu(w, 64);
  assert.deepEqual(plain.codes, ref.codes);
  const deq = dequantizeNf4Weight(plain);
  assert.deepEqual(deq, dequantizeNf4Cpu(ref, n));
  const absmax = plain.absmax!;
  for (let e = 0; e < n; e++) {
    const bound = absmax[Math.floor(e / 64)]! * NF4_MAX_GAP / 2;
    assert.ok(Math.abs(w[e]! - deq[e]!) <= bound * (1 + 1e-6), `element ${e}`);
  }
  // Double quantisation: the scales' own error, then the combined bound.
  const dq = quantizeNf4Weight(w, shape, { doubleQuant: true });
  assert.deepEqual(dq.codes, plain.codes);
  const map = dynamicMap();
  let mapGap = 0;
  for (let i = 1; i < 256; i++) mapGap = Math.max(mapGap, map[i]! - map[i - 1]!);
  const scales = nf4BlockScales(dq);
  for (let b = 0; b < absmax.length; b++) {
    const s = dq.doubleQuant!.scales[Math.floor(b / DOUBLE_QUANT_BLOCK)]!;
    assert.ok(
      Math.abs(scales[b]! - absmax[b]!) <= s * mapGap / 2 * (1 + 1e-5) + 1e-9,
      `scale ${b}`,
    );
  }
  const deq2 = dequantizeNf4Weight(dq);
  for (let e = 0; e < n; e++) {
    const b = Math.floor(e / 64);
    const bound = absmax[b]! * NF4_MAX_GAP / 2 + Math.abs(scales[b]! - absmax[b]!);
    assert.ok(Math.abs(w[e]! - deq2[e]!) <= bound * (1 + 1e-6), `dq element ${e}`);
  }
  const rel = relativeError(deq2, w).relative;
  assert.ok(rel > 0 && rel < 0.2, `relative error ${rel}`);
});

Deno.test("double quantisation: bitsandbytes recipe (mean offset, 256-blocks, nearest code)", () => {
  const absmax = Float32Array.from(randnArray(600, 8, 0.2, 0.03), Math.abs);
  const dq = doubleQuantize(absmax);
  const mean = absmax.reduce((a, b) => a + b, 0) / absmax.length;
  assert.ok(Math.abs(dq.offset - mean) < 1e-6);
  assert.equal(dq.scales.length, 3);
  const centred = Array.from(absmax.subarray(0, 256), (v) => Math.abs(v - dq.offset));
  assert.ok(Math.abs(dq.scales[0]! - Math.max(...centred)) < 1e-7);
  // The max-magnitude element of each group maps exactly to ±1 · scale.
  const back = doubleDequantize(dq);
  const worst = Math.max(...Array.from(back, (v, i) => Math.abs(v - absmax[i]!)));
  assert.ok(worst < 0.02 * Math.max(...dq.scales), `worst ${worst}`);
});

function cpuMatmul(
  x: Float64Array,
  m: number,
  k: number,
  w: Float64Array,
  n: number,
  transposed: boolean,
) {
  // transposed: y[m, n] = Σ_k x[m,k]·W[n,k]; else y[m, n] = Σ_k x[m,k]·W[k,n].
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * (transposed ? w[j * k + t]! : w[t * n + j]!);
      y[i * n + j] = s;
    }
  }
  return y;
}

for (const doubleQuant of [false, true]) {
  gpuTest(
    `NF4 matmul kernel vs float64 reference on the dequantised weight (doubleQuant ${doubleQuant})`,
    async () => {
      const [out, inF, rows] = [45, 70, 37]; // none a multiple of the 64×64×16 tiles
      const w = randnArray(out * inF, 21, 0, 0.1);
      const q = quantizeNf4Weight(w, [out, inF], { doubleQuant });
      const deq = dequantizeNf4Weight(q);
      const lin = Nf4Linear.upload(q);
      assert.equal(lin.byteLength, nf4Layout(out * inF, { doubleQuant }).totalBytes);
      const xs = Float64Array.from(Float32Array.from(randnArray(rows * inF, 22)));
      const x = variable(Tensor.fromArray(xs, [1, rows, inF]));
      const y = lin.apply(x);
      assert.deepEqual(y.shape, [1, rows, out]);
      assertClose(await y.toArray(), cpuMatmul(xs, rows, inF, deq, out, true), F32_TOL, "forward");
      // dL/dx for L = Σ y ⊙ g is g·Ŵ.
      const g = Float64Array.from(Float32Array.from(randnArray(rows * out, 23)));
      const gt = Tensor.fromArray(g, [1, rows, out]);
      backward(sum(mul(y, gt)));
      assert.ok(x.grad);
      assertClose(await x.grad!.toArray(), cpuMatmul(g, rows, out, deq, inF, false), F32_TOL, "dx");
      x.grad!.dispose();
      for (const t of [x, y, gt]) t.dispose();
      lin.dispose();
    },
  );
}

/** Rounds to the nearest f16 (ties to even), as WGSL's f32 → f16 conversion. */
const toF16 = (v: number) => f16BitsToF32(f64ToF16Bits(v));
/** Rounds to the nearest bf16 (ties to even). */
const toBf16 = (v: number) => bf16BitsToF32(f64ToBf16Bits(v));

const gpu = await getDevice().catch(() => undefined);
const noMatrixUnits = gpu === undefined
  ? "no WebGPU adapter"
  : subgroupMatrixUnavailableReason(gpu);
if (gpu && noMatrixUnits) {
  console.warn(`skipping the NF4 subgroup-matrix route's run: ${noMatrixUnits}`);
}

/**
 * Compute-dtype check: forward against float64 on the operands rounded as
 * the kernel rounds them, backward with the weight rounded only; `route`
 * forces the tiled kernel or the subgroup-matrix route.
 */
function computeDtypeTest(compute: "f16" | "bf16", route: "tiled" | "subgroup-matrix") {
  Deno.test({
    name: `NF4 matmul compute dtype ${compute} (${route}): operands rounded as bitsandbytes ` +
      "does, f32 accumulation",
    ignore: gpu === undefined || (route === "subgroup-matrix" && noMatrixUnits !== null),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      setNf4MatrixRouteForTesting(route === "subgroup-matrix");
      try {
        // The matrix units sum in their own order (the subgroup-matrix tests' 1e-4).
        await checkComputeDtype(compute, route === "tiled" ? 1e-6 : 1e-4);
      } finally {
        setNf4MatrixRouteForTesting(undefined);
      }
    },
  });
}

for (const compute of ["f16", "bf16"] as const) computeDtypeTest(compute, "tiled");
computeDtypeTest("f16", "subgroup-matrix");

Deno.test("NF4 route: the matrix units only for f16 compute, and never rounding an f32 dy", () => {
  assert.equal(nf4MatrixRoute("f16", "f32", true, true), true, "forward, f32 activations");
  assert.equal(nf4MatrixRoute("f16", "f16", true, true), true, "forward, f16 activations");
  assert.equal(nf4MatrixRoute("f16", "f16", false, true), true, "backward, f16 dy");
  assert.equal(nf4MatrixRoute("f16", "f32", false, true), false, "backward, f32 dy");
  assert.equal(nf4MatrixRoute("bf16", "f32", true, true), false, "bf16 compute");
  assert.equal(nf4MatrixRoute("f32", "f32", true, true), false, "f32 compute");
  assert.equal(nf4MatrixRoute("f16", "f32", true, false), false, "no matrix units");
});

gpuTest("NF4 route wiring: a forced route reaches the subgroup-matrix matmul", (d) => {
  if (!d.hasF16 || noMatrixUnits === null) return; // where it exists, the run above covers it
  const q = quantizeNf4Weight(randnArray(8 * 16, 36, 0, 0.1), [8, 16]);
  const lin = Nf4Linear.upload(q, { computeDtype: "f16" });
  const x = Tensor.fromArray(randnArray(3 * 16, 37), [3, 16]);
  setNf4MatrixRouteForTesting(true);
  try {
    assert.throws(() => noGrad(() => lin.apply(x)), /^Error: subgroupMatrixMatmul: /);
  } finally {
    setNf4MatrixRouteForTesting(undefined);
  }
  // Automatic choice on this device: the tiled kernel.
  const y = noGrad(() => lin.apply(x));
  assert.deepEqual(y.shape, [3, 8]);
  for (const t of [x, y]) t.dispose();
  lin.dispose();
});

for (const doubleQuant of [false, true]) {
  gpuTest(
    `NF4 → f16 dequantisation (the matrix route's weight), doubleQuant ${doubleQuant}`,
    async (d) => {
      if (!d.hasF16) return;
      const [out, inF] = [45, 70];
      const q = quantizeNf4Weight(randnArray(out * inF, 35, 0, 0.1), [out, inF], { doubleQuant });
      const lin = Nf4Linear.upload(q, { computeDtype: "f16" });
      const w16 = dequantizeNf4LinearF16(lin);
      assert.deepEqual(w16.shape, [out, inF]);
      assert.equal(w16.dtype, "f16");
      const got = await w16.toArray();
      const deq = dequantizeNf4Weight(q);
      if (doubleQuant) {
        // The absmax is decoded on the GPU in f32 (map·scale + offset, possibly fused): within
        // one f16 rounding of the float64 weight.
        assertClose(got, deq, 1e-3, "double-quant f16 weight");
      } else {
        // f32 level × f32 absmax rounded to f32, then to f16: bit for bit.
        const expected = deq.map((_, e) => {
          const byte = q.codes[e >> 1]!;
          const code = e % 2 === 0 ? byte >> 4 : byte & 15;
          return toF16(
            Math.fround(Math.fround(NF4_LEVELS[code]!) * q.absmax![Math.floor(e / 64)]!),
          );
        });
        assert.deepEqual([...got], [...expected]);
      }
      w16.dispose();
      lin.dispose();
    },
  );
}

async function checkComputeDtype(compute: "f16" | "bf16", tolerance: number) {
  const [out, inF, rows] = [45, 70, 37];
  const w = randnArray(out * inF, 31, 0, 0.1);
  const q = quantizeNf4Weight(w, [out, inF]);
  // The kernel's weight: f32 level × f32 absmax, product rounded to f32,
  // then to the compute dtype.
  const round = compute === "f16" ? toF16 : toBf16;
  const w32 = dequantizeNf4Weight(q).map((_, e) => {
    const byte = q.codes[e >> 1]!;
    const code = e % 2 === 0 ? byte >> 4 : byte & 15;
    return Math.fround(Math.fround(NF4_LEVELS[code]!) * q.absmax![Math.floor(e / 64)]!);
  });
  const wc = w32.map(round);
  const lin = Nf4Linear.upload(q, { computeDtype: compute });
  const plain = Nf4Linear.upload(q);
  const xs = Float64Array.from(Float32Array.from(randnArray(rows * inF, 32)));
  const x = variable(Tensor.fromArray(xs, [1, rows, inF]));
  const y = lin.apply(x);
  const expected = cpuMatmul(xs.map(round), rows, inF, wc, out, true);
  const got = await y.toArray();
  assertClose(got, expected, tolerance, `${compute} forward`);
  // The rounding is visible: the f32 result is measurably elsewhere.
  const f32Result = noGrad(() => plain.apply(x));
  const apart = relativeError(got, await f32Result.toArray()).relative;
  console.log(
    `NF4 ${compute} compute vs f32 compute: relative difference ${apart.toExponential(3)}`,
  );
  assert.ok(apart > 1e-4, `${compute} compute equals f32 compute (${apart})`);
  // Backward: the weight is rounded, the incoming gradient is not.
  const g = Float64Array.from(Float32Array.from(randnArray(rows * out, 33)));
  const gt = Tensor.fromArray(g, [1, rows, out]);
  backward(sum(mul(y, gt)));
  assertClose(await x.grad!.toArray(), cpuMatmul(g, rows, out, wc, inF, false), 1e-6, "dx");
  x.grad!.dispose();
  // Under autocast (halfGradient) the gradient is rounded to f16 as well (an f16×f16 product,
  // on the matrix route where it applies).
  const xh = variable(Tensor.fromArray(xs, [1, rows, inF]));
  backward(sum(mul(lin.apply(xh, { halfGradient: true }), gt)));
  const dxHalf = await xh.grad!.toArray();
  assertClose(dxHalf, cpuMatmul(g.map(toF16), rows, out, wc, inF, false), tolerance, "dx (f16 dy)");
  const dyVisible = relativeError(dxHalf, cpuMatmul(g, rows, out, wc, inF, false)).relative;
  assert.ok(dyVisible > 1e-5, `the f16 rounding of dy is not visible (${dyVisible})`);
  xh.grad!.dispose();
  for (const t of [x, xh, y, gt, f32Result]) t.dispose();
  lin.dispose();
  plain.dispose();
}

async function fixtureLogits(model: CausalLM, ids: number[][]) {
  const inputs = causalInputs(ids);
  const l = noGrad(() => model.forward(inputs).logits!);
  const v = (await l.toArray()) as Float32Array;
  l.dispose();
  disposeInputs(inputs);
  return v;
}

gpuTest(
  "QLoRA on the fixture: NF4 base + peft adapter = float64 reference on dequantised weights; grads only reach the adapter",
  async () => {
    const dir = sharedPathOrSkip("QLoRA fixture", "fixtures", "hf-mistral-tiny");
    if (!dir) return;
    const fx = await openCheckpoint(`${dir}/fixture.safetensors`);
    const flat = (await fx.read("input_ids", { as: "native" })) as Int32Array;
    const labels = (await fx.read("labels", { as: "native" })) as Int32Array;
    const [B, T] = fx.info("input_ids").shape as [number, number];
    fx.close();
    const ids = Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * T, (b + 1) * T)));
    const config = await loadModelConfig(dir);
    const ck = await openCheckpoint(dir);
    const weights = new Map<string, Float64Array>();
    for (const name of ck.names()) {
      weights.set(name, Float64Array.from(await ck.read(name, { as: "f32" })));
    }
    const shapes = new Map(ck.names().map((n) => [n, ck.info(n).shape as [number, number]]));
    ck.close();
    const adapterArrays = await readLoraAdapter(dir);
    const lora = new Map<string, ReferenceLora>();
    for (const [path, { a, b }] of adapterArrays.modules) {
      lora.set(path, {
        a: Float64Array.from(a),
        b: Float64Array.from(b),
        r: adapterArrays.config.r,
        scale: loraScaling(adapterArrays.config),
      });
    }
    const model = await loadCausalLM(dir);
    const adapter = await loadLoraAdapter(model, dir);
    const f32Logits = await fixtureLogits(model, ids);
    for (const doubleQuant of [false, true]) {
      const m: CausalLM = doubleQuant ? await loadCausalLM(dir) : model;
      if (doubleQuant) m.adapter = adapter;
      const paths: string[] = [];
      await quantizeModelNf4(m, { doubleQuant, onProgress: (_d, _t, p) => paths.push(p) });
      assert.equal(paths.length, 14);
      assert.equal(m.quantized.size, 14);
      assert.ok(![...m.params.keys()].some((k) => k.includes("_proj")), "float projections freed");
      const logits = await fixtureLogits(m, ids);
      // Independent reference: float64 forward with the dequantised projections.
      const dequantised = new Map(weights);
      for (const [name, w] of weights) {
        if (!name.endsWith("_proj.weight")) continue;
        dequantised.set(
          name,
          dequantizeNf4Weight(quantizeNf4Weight(w, shapes.get(name)!, { doubleQuant })),
        );
      }
      const expected = referenceForward(config, dequantised, { inputIds: ids, lora });
      assertClose(logits, expected, F32_TOL, `QLoRA logits (doubleQuant ${doubleQuant})`);
      // Quantisation error against the f32 model: this fixture's weights are
      // N(0, 0.05) at width 64, so NF4's per-weight error shows fully (the
      // float64 reference measures the same 0.208).
      const rel = relativeError(logits, f32Logits).relative;
      console.log(
        `QLoRA logits vs f32 (doubleQuant ${doubleQuant}): relative error ${rel.toExponential(3)}`,
      );
      assert.ok(rel > 0 && rel <= 0.3, `relative logits error ${rel}`);
      // Backward: adapter grads finite and non-zero, base has none.
      m.setTrainable(false);
      const inputs = causalInputs(ids);
      const targets = Tensor.fromArray(CausalLM.shiftedTargets(labels, B, T), [B * T], "i32");
      const { logits: lt } = m.forward(inputs);
      const loss = CausalLM.lmLoss(lt!, targets);
      backward(loss);
      for (const [name, p] of adapter.namedParameters()) {
        assert.ok(p.grad, `${name} has no gradient`);
        const gv = (await p.grad!.toArray()) as Float32Array;
        assert.ok(gv.every(Number.isFinite), `${name} gradient not finite`);
        assert.ok(gv.some((v) => v !== 0), `${name} gradient is zero`);
        p.grad!.dispose();
        p.grad = null;
      }
      for (const [name, p] of m.params) assert.equal(p.grad, null, `${name} (base) got a gradient`);
      for (const t of [lt!, loss, targets]) t.dispose();
      disposeInputs(inputs);
      if (doubleQuant) m.dispose();
    }
    adapter.dispose();
    model.dispose();
  },
);

Deno.test("memory: a 7B-shaped model's NF4 linears + f16 embeddings/lm_head fit in 4.5 GiB", () => {
  const plain = qloraMemory(MISTRAL_7B_SHAPE, { doubleQuant: false });
  const dq = qloraMemory(MISTRAL_7B_SHAPE, { doubleQuant: true });
  // 32 layers × (2·4096² + 2·1024·4096 + 3·14336·4096) quantised elements.
  const perLayer = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096;
  assert.equal(plain.quantizedElements, 32 * perLayer);
  assert.equal(plain.nf4CodeBytes, 32 * perLayer / 2);
  assert.equal(plain.nf4ScaleBytes, 32 * perLayer / 64 * 4);
  assert.equal(plain.embeddingBytes, 32768 * 4096 * 2);
  assert.equal(plain.lmHeadBytes, 32768 * 4096 * 2);
  assert.ok(plain.totalBytes <= 4.5 * 2 ** 30, `${plain.totalBytes / 2 ** 30} GiB`);
  assert.ok(dq.totalBytes < plain.totalBytes);
  assert.ok(dq.nf4ScaleBytes < plain.nf4ScaleBytes / 3.5);
  console.log(
    `7B QLoRA base: ${(plain.totalBytes / 2 ** 30).toFixed(3)} GiB, ` +
      `double-quant ${(dq.totalBytes / 2 ** 30).toFixed(3)} GiB`,
  );
});
