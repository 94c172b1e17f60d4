import assert from "node:assert/strict";
import { randnArray, Tensor, tidy } from "@irforge/tensor";
import { assertClose, checkOp, gpuTest } from "@irforge/tensor/testing";
import {
  appendEos,
  poolHidden,
  type PoolingBatch,
  type PoolingMode,
  realTokenPositions,
} from "./pooling.ts";

const B = 3, T = 5, H = 4;

/** Float64 reference: pick/average the real tokens of each row, then optionally normalise. */
function reference(
  hidden: Float64Array,
  real: boolean[][],
  mode: PoolingMode,
  normalize: boolean,
): Float64Array {
  const out = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    const positions = real[b]!.flatMap((r, t) => (r ? [t] : []));
    const chosen = mode === "mean"
      ? positions
      : mode === "last"
      ? [positions[positions.length - 1]!]
      : [positions[0]!];
    for (const t of chosen) {
      for (let h = 0; h < H; h++) out[b * H + h]! += hidden[(b * T + t) * H + h]! / chosen.length;
    }
    if (normalize) {
      let norm = 0;
      for (let h = 0; h < H; h++) norm += out[b * H + h]! ** 2;
      norm = Math.max(Math.sqrt(norm), 1e-12);
      for (let h = 0; h < H; h++) out[b * H + h]! /= norm;
    }
  }
  return out;
}

// Right padding (row lengths 5, 3, 1) and left padding (the same rows flush right).
const rightMask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]];
const leftMask = [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]];

const batches: [string, PoolingBatch, number[][]][] = [
  ["right-padded attentionMask", {
    batch: B,
    length: T,
    attentionMask: Int32Array.from(rightMask.flat()),
  }, rightMask],
  ["left-padded attentionMask", {
    batch: B,
    length: T,
    attentionMask: Int32Array.from(leftMask.flat()),
  }, leftMask],
  ["left-padded segment", {
    batch: B,
    length: T,
    segment: Int32Array.from(leftMask.flat().map((m) => (m ? 0 : -1))),
  }, leftMask],
  ["lengths", { batch: B, length: T, lengths: [5, 3, 1] }, rightMask],
];

gpuTest("poolHidden: mean/last/cls, normalised or not, values and grads vs float64", async () => {
  const hidden = randnArray(B * T * H, 21);
  for (const [name, info, mask] of batches) {
    const real = mask.map((row) => row.map((m) => m === 1));
    for (const mode of ["mean", "last", "cls"] as const) {
      for (const normalize of [false, true]) {
        await checkOp({
          name: `${name} ${mode}${normalize ? " normalised" : ""}`,
          inputs: [{ data: hidden, shape: [B, T, H], grad: true }],
          gpu: ([x]) => poolHidden(x!, info, mode, normalize),
          cpu: ([x]) => reference(x!, real, mode, normalize),
        });
      }
    }
  }
});

gpuTest(
  "poolHidden: last takes the appended EOS with right padding and the end with left",
  async () => {
    // Hidden state value = position index, so the picked positions can be read back.
    const data = new Float32Array(B * T * H);
    for (let i = 0; i < B * T; i++) data.fill(i % T, i * H, (i + 1) * H);
    const x = Tensor.fromArray(data, [B, T, H]);
    const read = async (info: PoolingBatch, mode: PoolingMode) => {
      const y = tidy(() => poolHidden(x, info, mode, false));
      const values = await y.toArray();
      y.dispose();
      return Array.from({ length: B }, (_, b) => values[b * H]!);
    };
    assert.deepEqual(await read(batches[0]![1], "last"), [4, 2, 0]);
    assert.deepEqual(await read(batches[1]![1], "last"), [4, 4, 4]);
    assert.deepEqual(await read(batches[1]![1], "cls"), [0, 2, 4]);
    assert.deepEqual(await read(batches[0]![1], "cls"), [0, 0, 0]);
    assertClose(await read(batches[0]![1], "mean"), [2, 1, 0], 1e-6);
    x.dispose();
  },
);

Deno.test("pooling: real-token positions and bad batches", () => {
  assert.deepEqual(realTokenPositions(batches[1]![1]), [[0, 1, 2, 3, 4], [2, 3, 4], [4]]);
  assert.deepEqual(realTokenPositions({ batch: 1, length: 2 }), [[0, 1]]);
  assert.throws(
    () => realTokenPositions({ batch: 1, length: 3, attentionMask: [1, 0, 0], lengths: [1] }),
    /give one of attentionMask, segment or lengths/,
  );
  assert.throws(
    () => realTokenPositions({ batch: 2, length: 2, attentionMask: [1, 1, 0, 0] }),
    /row 1 has no real token/,
  );
  assert.throws(
    () => realTokenPositions({ batch: 1, length: 3, segment: [0, 1, 1] }),
    /row 0 packs several sequences \(segments 0 and 1\)/,
  );
  assert.throws(
    () => realTokenPositions({ batch: 2, length: 3, attentionMask: [1, 1, 1] }),
    /mask has 3 entries for batch 2 × length 3/,
  );
});

Deno.test("appendEos: appends, and truncates so that the EOS fits", () => {
  assert.deepEqual(appendEos([1, 5, 6], 2), [1, 5, 6, 2]);
  assert.deepEqual(appendEos([1, 5, 6, 7], 2, 3), [1, 5, 2]);
  assert.deepEqual(appendEos([], 2, 1), [2]);
  assert.throws(() => appendEos([1], 2, 0), /maxLength must be a positive integer/);
  assert.throws(() => appendEos([1], -1), /bad eos id/);
});
