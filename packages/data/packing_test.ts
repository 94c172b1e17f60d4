import assert from "node:assert/strict";
import {
  packingReport,
  type PackingStrategy,
  packSequences,
  paddingReport,
  planPacking,
} from "./packing.ts";
import { attentionAllowed, collate, IGNORE_INDEX, type TokenSequence } from "./sequence.ts";
import { randomInt, seededRandom } from "./random.ts";

function randomSequences(seed: number, count: number, maxLength: number): TokenSequence[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, s) => {
    const n = 1 + randomInt(random, maxLength);
    // Token ids encode (sequence, offset) so every token is traceable.
    const inputIds = Array.from({ length: n }, (_, t) => s * 1000 + t + 1);
    return { inputIds, labels: inputIds.map((id) => id) };
  });
}

for (const strategy of ["next-fit", "first-fit-decreasing"] as PackingStrategy[]) {
  Deno.test(`${strategy}: every token once, no split, positions restart, boundaries masked`, () => {
    const sequences = randomSequences(7, 300, 60);
    const { rows, report } = packSequences(sequences, { maxSeqLength: 64, strategy });
    const seen = new Set<number>();
    for (const row of rows) {
      assert.ok(row.inputIds.length <= 64);
      let cursor = 0;
      row.sources.forEach((source, k) => {
        const original = sequences[source]!;
        const n = original.inputIds.length;
        // contiguous and unsplit
        assert.deepEqual(row.inputIds.slice(cursor, cursor + n), original.inputIds);
        assert.deepEqual(row.position.slice(cursor, cursor + n), [...Array(n).keys()]);
        assert.ok(row.segment.slice(cursor, cursor + n).every((v) => v === k));
        assert.equal(row.labels[cursor], IGNORE_INDEX);
        assert.deepEqual(row.labels.slice(cursor + 1, cursor + n), original.labels.slice(1));
        assert.ok(!seen.has(source));
        seen.add(source);
        cursor += n;
      });
      assert.equal(cursor, row.inputIds.length);
    }
    assert.equal(seen.size, sequences.length);
    const real = sequences.reduce((a, s) => a + s.inputIds.length, 0);
    assert.equal(report.realTokens, real);
    assert.equal(report.slots, rows.length * 64);
    assert.equal(report.efficiency, real / (rows.length * 64));
  });
}

Deno.test("packed rows never attend across sequences", () => {
  const sequences = randomSequences(3, 20, 10);
  const { rows } = packSequences(sequences, { maxSeqLength: 32 });
  const batch = collate(rows, { padId: 0, length: 32 });
  for (let r = 0; r < batch.rows; r++) {
    for (let i = 0; i < 32; i++) {
      for (let j = 0; j < 32; j++) {
        const si = batch.segment[r * 32 + i]!;
        const sj = batch.segment[r * 32 + j]!;
        const expected = si >= 0 && si === sj && j <= i;
        assert.equal(attentionAllowed(batch, r, i, j), expected);
      }
    }
  }
});

Deno.test("FFD never needs more rows than next-fit, and both are deterministic", () => {
  for (let seed = 0; seed < 50; seed++) {
    const random = seededRandom(seed, 99);
    const lengths = Array.from({ length: 200 }, () => 1 + randomInt(random, 512));
    const ffd = planPacking(lengths, 512, "first-fit-decreasing");
    const nf = planPacking(lengths, 512, "next-fit");
    assert.ok(ffd.rows.length <= nf.rows.length, `seed ${seed}`);
    const lowerBound = Math.ceil(lengths.reduce((a, b) => a + b, 0) / 512);
    assert.ok(ffd.rows.length >= lowerBound);
    assert.deepEqual(planPacking(lengths, 512, "first-fit-decreasing"), ffd);
    for (const row of ffd.rows) assert.ok(row.reduce((a, i) => a + lengths[i]!, 0) <= 512);
  }
});

Deno.test("FFD matches a plain quadratic first-fit-decreasing", () => {
  const random = seededRandom(5);
  const lengths = Array.from({ length: 500 }, () => 1 + randomInt(random, 100));
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const free: number[] = [];
  const rows: number[][] = [];
  for (const i of order) {
    let r = free.findIndex((f) => f >= lengths[i]!);
    if (r < 0) {
      r = free.length;
      free.push(128);
      rows.push([]);
    }
    free[r]! -= lengths[i]!;
    rows[r]!.push(i);
  }
  assert.deepEqual(planPacking(lengths, 128, "first-fit-decreasing").rows, rows);
});

Deno.test("reports: hand-computed efficiencies; too-long sequence is an error", () => {
  const plan = planPacking([3, 5, 2, 6], 8, "next-fit");
  assert.deepEqual(plan.rows, [[0, 1], [2, 3]]);
  assert.deepEqual(packingReport([3, 5, 2, 6], plan), {
    sequences: 4,
    rows: 2,
    realTokens: 16,
    slots: 16,
    efficiency: 1,
  });
  assert.equal(paddingReport([3, 5, 2, 6], 2).slots, 5 * 2 + 6 * 2);
  assert.throws(() => planPacking([9], 8, "next-fit"), /sequence 0 has 9 tokens/);
});

Deno.test("collate pads left or right with metadata and multiple-of rounding", () => {
  const batch = collate([{ inputIds: [5, 6, 7], labels: [-100, 6, 7] }, {
    inputIds: [8],
    labels: [8],
  }], {
    padId: 0,
    side: "left",
    padToMultipleOf: 4,
  });
  assert.equal(batch.length, 4);
  assert.deepEqual([...batch.inputIds], [0, 5, 6, 7, 0, 0, 0, 8]);
  assert.deepEqual([...batch.labels], [-100, -100, 6, 7, -100, -100, -100, 8]);
  assert.deepEqual([...batch.attentionMask], [0, 1, 1, 1, 0, 0, 0, 1]);
  assert.deepEqual([...batch.segment], [-1, 0, 0, 0, -1, -1, -1, 0]);
  assert.deepEqual([...batch.position], [0, 0, 1, 2, 0, 0, 0, 0]);
  const right = collate([{ inputIds: [5, 6], labels: [5, 6] }], { padId: 9, length: 3 });
  assert.deepEqual([...right.inputIds], [5, 6, 9]);
  assert.deepEqual([...right.kind], [0, 0, -1]);
});
