import assert from "node:assert/strict";
import { attentionBackward } from "./attention_backward.ts";
import { attentionForward } from "./attention_forward.ts";
import { AttentionMask } from "./attention_mask.ts";
import {
  blockRankMask,
  causalMask,
  maskFromArrays,
  type MaskMetadata,
  packedMask,
} from "./mask_metadata.ts";
import { referenceAttentionBackward, referenceAttentionForward } from "./reference.ts";
import {
  readBack,
  relativeError,
  seededRandom,
  testDevice,
  toF32,
  upload,
} from "./test_support.ts";
import { type AttentionTiling, chooseTiling } from "./tiling.ts";

const device = await testDevice();
if (!device) console.log("attention_test: no WebGPU adapter, GPU tests skipped");
const TOLERANCE = 1e-4;

interface Case {
  meta: MaskMetadata;
  heads: number;
  kvHeads: number;
  headDim: number;
  tiling?: AttentionTiling;
  scale?: number;
  seed?: number;
  keySplits?: number;
}

interface GpuResult {
  out: Float32Array;
  lse: Float32Array;
  dQ: Float32Array;
  dK: Float32Array;
  dV: Float32Array;
}

function inputsFor(c: Case) {
  const { batch, length } = c.meta;
  const seed = c.seed ?? 1;
  const qn = batch * c.heads * length * c.headDim, kn = batch * c.kvHeads * length * c.headDim;
  return {
    q: toF32(seededRandom(seed, qn)),
    k: toF32(seededRandom(seed + 1, kn)),
    v: toF32(seededRandom(seed + 2, kn)),
    dOut: toF32(seededRandom(seed + 3, qn)),
  };
}

async function runGpu(c: Case, data: ReturnType<typeof inputsFor>): Promise<GpuResult> {
  const gpu = device!;
  const mask = new AttentionMask(c.meta);
  const buffers = { q: upload(gpu, data.q), k: upload(gpu, data.k), v: upload(gpu, data.v) };
  const shape = { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: c.scale };
  const forward = await attentionForward({ ...shape, ...buffers, mask, tiling: c.tiling });
  const dOut = upload(gpu, data.dOut);
  const backward = await attentionBackward({
    ...shape,
    ...buffers,
    out: forward.out,
    lse: forward.lse,
    dOut,
    mask,
    tiling: c.tiling,
    keySplits: c.keySplits,
  });
  const result = {
    out: await readBack(gpu, forward.out),
    lse: await readBack(gpu, forward.lse),
    dQ: await readBack(gpu, backward.dQ),
    dK: await readBack(gpu, backward.dK),
    dV: await readBack(gpu, backward.dV),
  };
  for (
    const b of [
      ...Object.values(buffers),
      forward.out,
      forward.lse,
      dOut,
      backward.dQ,
      backward.dK,
      backward.dV,
    ]
  ) b.destroy();
  mask.destroy();
  return result;
}

/** Runs forward + backward on the GPU and checks every output against the float64 reference. */
async function checkAgainstReference(c: Case): Promise<GpuResult> {
  const data = inputsFor(c);
  const gpu = await runGpu(c, data);
  const shape = { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: c.scale };
  const ref = referenceAttentionForward({ ...shape, ...data, meta: c.meta });
  const refGrad = referenceAttentionBackward({ ...shape, ...data, meta: c.meta });
  const errors = {
    out: relativeError(gpu.out, ref.out),
    lse: relativeError(gpu.lse, ref.lse),
    dQ: relativeError(gpu.dQ, refGrad.dQ),
    dK: relativeError(gpu.dK, refGrad.dK),
    dV: relativeError(gpu.dV, refGrad.dV),
  };
  for (const [name, error] of Object.entries(errors)) {
    assert.ok(error < TOLERANCE, `${name}: relative error ${error} ≥ ${TOLERANCE}`);
  }
  return gpu;
}

function gpuTest(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, ignore: !device, fn, sanitizeResources: false, sanitizeOps: false });
}

const small: AttentionTiling = { queryTile: 8, keyTile: 4, threadsPerRow: 4 };

gpuTest("causal, T not a multiple of the tiles, head_dim 16", async () => {
  await checkAgainstReference({
    meta: causalMask({ batch: 2, length: 19 }),
    heads: 2,
    kvHeads: 2,
    headDim: 16,
    tiling: small,
  });
});

gpuTest("causal with left and right padding (HF attention_mask), GQA 2", async () => {
  const t = 13;
  const left = Array.from({ length: t }, (_, n) => n < 4 ? 0 : 1);
  const right = Array.from({ length: t }, (_, n) => n < 9 ? 1 : 0);
  const gpu = await checkAgainstReference({
    meta: causalMask({ batch: 2, length: t, attentionMask: [left, right] }),
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    tiling: small,
  });
  // Pad rows: output and gradients exactly zero.
  const d = 16;
  for (let h = 0; h < 4; h++) {
    for (let c = 0; c < d; c++) {
      assert.equal(gpu.out[(h * t + 0) * d + c], 0);
      assert.equal(gpu.dQ[((4 + h) * t + 12) * d + c], 0);
    }
  }
  for (let c = 0; c < d; c++) assert.equal(gpu.dK[(0 * t + 2) * d + c], 0);
});

gpuTest("GQA ratios 1, 2 and 4 with a custom scale", async () => {
  for (const kvHeads of [4, 2, 1]) {
    await checkAgainstReference({
      meta: causalMask({ batch: 1, length: 11 }),
      heads: 4,
      kvHeads,
      headDim: 16,
      tiling: { queryTile: 4, keyTile: 4, threadsPerRow: 2 },
      scale: 0.3,
      seed: kvHeads,
    });
  }
});

gpuTest("sliding window shorter than T", async () => {
  await checkAgainstReference({
    meta: causalMask({ batch: 1, length: 23, window: 5 }),
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    tiling: small,
  });
});

gpuTest("packed segments match the reference and do not contaminate each other", async () => {
  const c: Case = {
    meta: packedMask({ length: 21, segmentLengths: [[9, 7], [21]] }),
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    tiling: small,
  };
  const first = await checkAgainstReference(c);
  // Change q, k, v and dOut of segment 1 (tokens 9..15 of batch row 0).
  const data = inputsFor(c);
  const perturbed = inputsFor({ ...c, seed: 99 });
  const d = 16, t = 21;
  for (const [name, heads] of [["q", 2], ["k", 1], ["v", 1], ["dOut", 2]] as const) {
    for (let h = 0; h < heads; h++) {
      const from = (h * t + 9) * d, to = (h * t + 16) * d;
      data[name].set(perturbed[name].subarray(from, to), from);
    }
  }
  const second = await runGpu(c, data);
  const segment0 = (heads: number, perRow: number) => (x: Float32Array) =>
    Array.from({ length: heads }, (_, h) => [...x.subarray(h * t * perRow, (h * t + 9) * perRow)]);
  for (
    const [name, heads, perRow] of [
      ["out", 2, d],
      ["lse", 2, 1],
      ["dQ", 2, d],
      ["dK", 1, d],
      ["dV", 1, d],
    ] as const
  ) {
    assert.deepEqual(
      segment0(heads, perRow)(second[name]),
      segment0(heads, perRow)(first[name]),
      `${name} of segment 0 changed`,
    );
  }
  assert.notDeepEqual([...second.out.subarray(9 * d, 16 * d)], [
    ...first.out.subarray(9 * d, 16 * d),
  ]);
});

gpuTest("BlockRank: 3 uneven documents plus pads, head_dim 64", async () => {
  await checkAgainstReference({
    meta: blockRankMask({
      length: 40,
      rows: [
        { instruction: 5, documents: [9, 3, 12], query: 6 },
        { instruction: 3, documents: [4, 11, 6], query: 5, leftPad: 4 },
      ],
    }),
    heads: 2,
    kvHeads: 1,
    headDim: 64,
    tiling: { queryTile: 8, keyTile: 8, threadsPerRow: 8 },
  });
});

gpuTest("a batch row entirely of padding gives zeros, never NaN", async () => {
  const gpu = await checkAgainstReference({
    meta: maskFromArrays({ segment: [new Array(10).fill(0), new Array(10).fill(-1)] }),
    heads: 2,
    kvHeads: 2,
    headDim: 12,
    tiling: small,
  });
  const half = (x: Float32Array) => [...x.subarray(x.length / 2)];
  for (const name of ["out", "lse", "dQ", "dK", "dV"] as const) {
    assert.ok(half(gpu[name]).every((value) => value === 0), `${name} of the pad row is not 0`);
  }
});

gpuTest("head_dim 12 and 64 with the tiling chosen for the device", async () => {
  for (const headDim of [12, 64]) {
    const tiling = chooseTiling(device!.limits, "backward", headDim);
    await checkAgainstReference({
      meta: blockRankMask({
        length: 37,
        rows: [{ instruction: 4, documents: [7, 9, 5], query: 8 }],
      }),
      heads: 4,
      kvHeads: 2,
      headDim,
      tiling,
      seed: headDim,
    });
  }
});

gpuTest("default tilings (forward and backward differ) agree with the reference", async () => {
  await checkAgainstReference({
    meta: packedMask({ length: 33, segmentLengths: [[20, 10]], window: 12 }),
    heads: 2,
    kvHeads: 1,
    headDim: 64,
  });
});

gpuTest(
  "tiling edges: head_dim 10, 12, 16, 64, 80, 128 at T = 37 (no tile divides it)",
  async () => {
    // 10 takes the scalar path (D not a multiple of 4: a zero-padded last vec4).
    for (const headDim of [10, 12, 16, 64, 80, 128]) {
      await checkAgainstReference({
        meta: causalMask({ batch: 1, length: 37 }),
        heads: 2,
        kvHeads: 1,
        headDim,
        seed: headDim + 7,
      });
    }
  },
);

gpuTest("BlockRank with documents shorter than a tile and whole tiles of padding", async () => {
  const meta = blockRankMask({
    length: 45,
    rows: [
      { instruction: 3, documents: [2, 1, 3, 2, 5], query: 2, leftPad: 17 },
      { instruction: 2, documents: [1, 2, 1], query: 3 },
    ],
  });
  for (const tiling of [undefined, { queryTile: 16, keyTile: 8, threadsPerRow: 4 }]) {
    const gpu = await checkAgainstReference({ meta, heads: 4, kvHeads: 2, headDim: 20, tiling });
    // Rows of the padded first tiles: exact zeros.
    for (let n = 0; n < 16 * 20; n++) assert.equal(gpu.out[n], 0);
  }
});

gpuTest(
  "split dK/dV (3 splits, GQA 4) matches the reference and is bit-identical across runs",
  async () => {
    const c: Case = {
      meta: blockRankMask({
        length: 34,
        rows: [{ instruction: 4, documents: [9, 6, 7], query: 8 }],
      }),
      heads: 4,
      kvHeads: 1,
      headDim: 16,
      tiling: { queryTile: 8, keyTile: 8, threadsPerRow: 4 },
      keySplits: 3,
    };
    const first = await checkAgainstReference(c);
    const second = await runGpu(c, inputsFor(c));
    assert.deepEqual([...second.dK], [...first.dK]);
    assert.deepEqual([...second.dV], [...first.dV]);
  },
);

gpuTest("backward is deterministic (bit-identical across runs)", async () => {
  const c: Case = {
    meta: blockRankMask({ length: 30, rows: [{ instruction: 3, documents: [8, 8, 5], query: 4 }] }),
    heads: 4,
    kvHeads: 1,
    headDim: 16,
    tiling: small,
  };
  const data = inputsFor(c);
  const a = await runGpu(c, data), b = await runGpu(c, data);
  assert.deepEqual([...a.dK], [...b.dK]);
  assert.deepEqual([...a.dV], [...b.dV]);
  assert.deepEqual([...a.dQ], [...b.dQ]);
});

gpuTest("bad shapes and tilings are rejected with a clear message", () => {
  const gpu = device!;
  const mask = new AttentionMask(causalMask({ batch: 1, length: 4 }));
  const tiny = upload(gpu, new Float64Array(4));
  assert.throws(
    () => attentionForward({ q: tiny, k: tiny, v: tiny, mask, heads: 3, kvHeads: 2, headDim: 4 }),
    /kvHeads 2 must divide heads 3/,
  );
  assert.throws(
    () => attentionForward({ q: tiny, k: tiny, v: tiny, mask, heads: 1, kvHeads: 1, headDim: 4 }),
    /buffer "q" has 16 bytes, needs 64/,
  );
  assert.throws(
    () =>
      attentionForward({
        q: tiny,
        k: tiny,
        v: tiny,
        mask,
        heads: 1,
        kvHeads: 1,
        headDim: 1,
        tiling: { queryTile: 512, keyTile: 512, threadsPerRow: 1 },
      }),
    /workgroup memory/,
  );
  assert.throws(
    () =>
      attentionForward({
        q: tiny,
        k: tiny,
        v: tiny,
        mask,
        heads: 1,
        kvHeads: 1,
        headDim: 1,
        tiling: { queryTile: 8, keyTile: 6, threadsPerRow: 2 },
      }),
    /keyTile 6 must be a multiple of 4/,
  );
  tiny.destroy();
  mask.destroy();
});
