import { deepEqual as assertEquals, throws } from "node:assert/strict";
import { isVisible } from "@irforge/tensor/attention";
import {
  blockRankMask,
  causalMask,
  maskFromArrays,
  type MaskMetadata,
  packedMask,
} from "@irforge/tensor";
import { attentionFlops, visiblePairs } from "./visible_pairs.ts";

function bruteForce(meta: MaskMetadata): number {
  let n = 0;
  for (let b = 0; b < meta.batch; b++) {
    for (let i = 0; i < meta.length; i++) {
      for (let j = 0; j < meta.length; j++) if (isVisible(meta, b, i, j)) n++;
    }
  }
  return n;
}

Deno.test("visiblePairs: causal is T(T+1)/2, with pads excluded", () => {
  assertEquals(visiblePairs(causalMask({ batch: 1, length: 37 })), (37 * 38) / 2);
  const padded = causalMask({
    batch: 2,
    length: 6,
    attentionMask: [[0, 0, 1, 1, 1, 1], [
      1,
      1,
      1,
      0,
      0,
      0,
    ]],
  });
  assertEquals(visiblePairs(padded), bruteForce(padded));
  assertEquals(visiblePairs(padded), 10 + 6);
});

Deno.test("visiblePairs matches a brute-force scan of isVisible", () => {
  const cases: MaskMetadata[] = [
    blockRankMask({
      length: 60,
      rows: [
        { instruction: 5, documents: [7, 3, 11], query: 4, leftPad: 2 },
        { instruction: 1, documents: [16, 16, 16], query: 9 },
      ],
    }),
    packedMask({ length: 20, segmentLengths: [[5, 9, 3], [20]] }),
    maskFromArrays({
      segment: [[0, 0, 0, 1, 1, 1, 1, -1]],
      block: [[0, 1, 1, 0, 2, 2, 3, 0]],
      kind: [[0, 1, 1, 0, 1, 1, 2, 2]],
    }),
  ];
  // Random layouts: kinds, blocks and segments drawn freely.
  let s = 12345;
  const next = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  for (let c = 0; c < 20; c++) {
    const T = 1 + next(40);
    cases.push(maskFromArrays({
      segment: [Array.from({ length: T }, () => next(3) - 1)],
      block: [Array.from({ length: T }, () => next(4))],
      kind: [Array.from({ length: T }, () => next(3))],
    }));
  }
  for (const meta of cases) assertEquals(visiblePairs(meta), bruteForce(meta));
});

Deno.test("visiblePairs: BlockRank grows linearly in the number of documents", () => {
  const pairs = (n: number) => {
    const rows = [{ instruction: 32, documents: Array(n).fill(160), query: 32 }];
    return visiblePairs(blockRankMask({ length: 64 + 160 * n, rows }));
  };
  // Each document: 160·32 prefix keys + 160·161/2 causal own keys; the query sees everything.
  const perDoc = 160 * 32 + (160 * 161) / 2;
  const fixed = (32 * 33) / 2;
  for (const n of [1, 10, 100]) {
    const query = 32 * (32 + 160 * n) + (32 * 33) / 2;
    assertEquals(pairs(n), fixed + n * perDoc + query);
  }
});

Deno.test("attentionFlops: 4·D forward and 10·D backward per pair and head", () => {
  assertEquals(attentionFlops(1000, 32, 128), {
    forward: 4 * 128 * 32 * 1000,
    backward: 10 * 128 * 32 * 1000,
  });
});

Deno.test("visiblePairs refuses sliding windows", () => {
  throws(() => visiblePairs(causalMask({ batch: 1, length: 8, window: 4 })), /sliding windows/);
});
