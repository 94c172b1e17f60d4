import assert from "node:assert/strict";
import {
  BlockKind,
  blockRankMask,
  causalMask,
  isVisible,
  maskFromArrays,
  type MaskMetadata,
  packedMask,
} from "./mask_metadata.ts";

function visibleSet(meta: MaskMetadata, b: number): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < meta.length; i++) {
    for (let j = 0; j < meta.length; j++) if (isVisible(meta, b, i, j)) pairs.push(`${i},${j}`);
  }
  return pairs;
}

Deno.test("causalMask without padding is exactly j ≤ i", () => {
  const meta = causalMask({ batch: 1, length: 6 });
  const expected: string[] = [];
  for (let i = 0; i < 6; i++) for (let j = 0; j <= i; j++) expected.push(`${i},${j}`);
  assert.deepEqual(visibleSet(meta, 0), expected);
});

Deno.test("causalMask with left padding hides pads both ways", () => {
  const meta = causalMask({ batch: 1, length: 4, attentionMask: [[0, 0, 1, 1]] });
  assert.deepEqual([...meta.segment], [-1, -1, 0, 0]);
  assert.deepEqual(visibleSet(meta, 0), ["2,2", "3,2", "3,3"]);
});

Deno.test("causalMask with a sliding window keeps only the last `window` keys", () => {
  const meta = causalMask({ batch: 1, length: 5, window: 2 });
  assert.deepEqual(visibleSet(meta, 0), [
    "0,0",
    "1,0",
    "1,1",
    "2,1",
    "2,2",
    "3,2",
    "3,3",
    "4,3",
    "4,4",
  ]);
});

Deno.test("packedMask keeps segments apart and pads the rest", () => {
  const meta = packedMask({ length: 6, segmentLengths: [[2, 3]] });
  assert.deepEqual([...meta.segment], [0, 0, 1, 1, 1, -1]);
  assert.deepEqual(visibleSet(meta, 0), [
    "0,0",
    "1,0",
    "1,1",
    "2,2",
    "3,2",
    "3,3",
    "4,2",
    "4,3",
    "4,4",
  ]);
});

Deno.test("blockRankMask follows the prefix/local/global rule", () => {
  // [pad 0] [instruction 1,2] [doc a 3,4] [doc b 5] [query 6,7] [pad 8]
  const meta = blockRankMask({
    length: 9,
    rows: [{ leftPad: 1, instruction: 2, documents: [2, 1], query: 2 }],
  });
  assert.deepEqual([...meta.segment], [-1, 0, 0, 0, 0, 0, 0, 0, -1]);
  assert.deepEqual([...meta.kind].slice(1, 8), [0, 0, 1, 1, 1, 2, 2]);
  assert.deepEqual([...meta.block].slice(1, 8), [0, 0, 1, 1, 2, 3, 3]);
  const v = (i: number, j: number) => isVisible(meta, 0, i, j);
  assert.equal(v(2, 1), true); // instruction causal within itself
  assert.equal(v(1, 2), false);
  assert.equal(v(3, 1) && v(3, 2) && v(4, 3) && v(4, 4), true); // doc a: prefix and itself
  assert.equal(v(3, 4), false); // causal within the document
  assert.equal(v(5, 3) || v(5, 4), false); // doc b does not see doc a
  assert.equal(v(5, 1) && v(5, 5), true);
  for (let j = 1; j <= 7; j++) assert.equal(v(7, j), true); // query sees everything before
  assert.equal(v(6, 7), false);
  assert.equal(v(0, 0) || v(8, 8) || v(8, 7) || v(1, 0), false); // pads
});

Deno.test("maskFromArrays defaults to one global block", () => {
  const meta = maskFromArrays({ segment: [[0, 0, -1]] });
  assert.deepEqual([...meta.kind], [BlockKind.global, BlockKind.global, BlockKind.global]);
  assert.deepEqual(visibleSet(meta, 0), ["0,0", "1,0", "1,1"]);
});

Deno.test("builders reject bad input with the field and position", () => {
  assert.throws(
    () => causalMask({ batch: 1, length: 3, attentionMask: [[1, 2, 1]] }),
    /attentionMask\[0\]\[1\] = 2/,
  );
  assert.throws(() => packedMask({ length: 4, segmentLengths: [[3, 2]] }), /need 5 tokens/);
  assert.throws(
    () => blockRankMask({ length: 9, rows: [{ instruction: 1, documents: [2, 0], query: 1 }] }),
    /documents\[1\] = 0/,
  );
  assert.throws(
    () => maskFromArrays({ segment: [[0, 0]], kind: [[2, 3]] }),
    /row 0, token 1, field "kind"/,
  );
  assert.throws(() => maskFromArrays({ segment: [[0, -2]] }), /field "segment"/);
});
