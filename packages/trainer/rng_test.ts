import assert from "node:assert/strict";
import { Rng, type RngState } from "./rng.ts";

/** xoshiro128** transcribed from Vigna's C reference with BigInt arithmetic. */
function referenceOutputs(state: [number, number, number, number], count: number): number[] {
  const mask = 0xffffffffn;
  const s = state.map(BigInt);
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & mask;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s[1]! * 5n) & mask, 7n) * 9n) & mask));
    const t = (s[1]! << 9n) & mask;
    s[2] = s[2]! ^ s[0]!;
    s[3] = s[3]! ^ s[1]!;
    s[1] = s[1]! ^ s[2]!;
    s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ t;
    s[3] = rotl(s[3]!, 11n);
  }
  return out;
}

Deno.test("Rng.next matches a BigInt transcription of xoshiro128**", () => {
  for (const seed of [0, 1, 42, 2 ** 40 + 7]) {
    const rng = Rng.seeded(seed);
    const start = rng.state().s;
    const got = Array.from({ length: 2000 }, () => rng.next());
    assert.deepEqual(got, referenceOutputs(start, 2000));
  }
  // A state with high bits set everywhere exercises the unsigned handling.
  const state: RngState = {
    algorithm: "xoshiro128**",
    s: [0xffffffff, 0x80000001, 0xdeadbeef, 0x12345678],
  };
  const rng = Rng.fromState(state);
  assert.deepEqual(Array.from({ length: 500 }, () => rng.next()), referenceOutputs(state.s, 500));
});

Deno.test("Rng: same seed, same stream; different seeds, different streams", () => {
  const a = Rng.seeded(123);
  const b = Rng.seeded(123);
  const c = Rng.seeded(124);
  const drawsA = Array.from({ length: 100 }, () => a.uniform());
  assert.deepEqual(Array.from({ length: 100 }, () => b.uniform()), drawsA);
  const drawsC = Array.from({ length: 100 }, () => c.uniform());
  assert.equal(drawsC.filter((x, i) => x === drawsA[i]).length, 0);
  assert.notDeepEqual(Rng.seeded(2 ** 33).state(), Rng.seeded(0).state());
});

Deno.test("Rng: state round trip through JSON continues the exact stream", () => {
  const rng = Rng.seeded(7);
  for (let i = 0; i < 37; i++) rng.normal();
  const saved = JSON.parse(JSON.stringify(rng.state())) as RngState;
  const restored = Rng.fromState(saved);
  for (let i = 0; i < 200; i++) {
    assert.equal(restored.next(), rng.next());
    assert.equal(restored.normal(), rng.normal());
    assert.equal(restored.int(1000), rng.int(1000));
  }
  assert.throws(() => Rng.fromState({ algorithm: "xoshiro128**", s: [0, 0, 0, 0] }), /all zero/);
  assert.throws(
    () => Rng.fromState({ algorithm: "xoshiro128**", s: [1, 2, 3, -1] }),
    /unsigned 32-bit/,
  );
  assert.throws(() => Rng.fromState({ algorithm: "pcg" } as unknown as RngState), /unsupported/);
});

Deno.test("Rng: uniform and normal moments over 10k draws", () => {
  const rng = Rng.seeded(2024);
  const n = 10_000;
  const moments = (draw: () => number) => {
    let sum = 0;
    let sumSq = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = draw();
      sum += x;
      sumSq += x * x;
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    const mean = sum / n;
    return { mean, variance: sumSq / n - mean * mean, min, max };
  };
  // Bounds are 5 standard errors of the estimate.
  const u = moments(() => rng.uniform());
  assert.ok(Math.abs(u.mean - 0.5) < 5 * Math.sqrt(1 / 12 / n), `uniform mean ${u.mean}`);
  assert.ok(
    Math.abs(u.variance - 1 / 12) < 5 * Math.sqrt(1 / 180 / n),
    `uniform var ${u.variance}`,
  );
  assert.ok(u.min >= 0 && u.max < 1);
  const g = moments(() => rng.normal(3, 2));
  assert.ok(Math.abs(g.mean - 3) < 5 * 2 / Math.sqrt(n), `normal mean ${g.mean}`);
  assert.ok(Math.abs(g.variance - 4) < 5 * 4 * Math.sqrt(2 / n), `normal var ${g.variance}`);
});

Deno.test("Rng.int: in range and roughly uniform (chi-square)", () => {
  const rng = Rng.seeded(99);
  const k = 7;
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < 14_000; i++) counts[rng.int(k)]!++;
  const expected = 14_000 / k;
  const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
  // 6 degrees of freedom: P(chi2 > 22.46) = 0.001.
  assert.ok(chi2 < 22.46, `chi2 ${chi2} counts ${counts}`);
  assert.equal(rng.int(1), 0);
  const big = rng.int(2 ** 32);
  assert.ok(big >= 0 && big < 2 ** 32);
  assert.throws(() => rng.int(0), RangeError);
  assert.throws(() => rng.int(2.5), RangeError);
});

Deno.test("Rng.shuffle: a permutation; every position equally likely", () => {
  const rng = Rng.seeded(5);
  const items = [0, 1, 2, 3];
  const firstCounts = [0, 0, 0, 0];
  for (let i = 0; i < 8000; i++) {
    const shuffled = rng.shuffle([...items]);
    assert.deepEqual([...shuffled].sort(), items);
    firstCounts[shuffled[0]!]!++;
  }
  for (const c of firstCounts) assert.ok(Math.abs(c - 2000) < 5 * Math.sqrt(8000 * 0.25 * 0.75));
});

Deno.test("Rng.split: deterministic, independent of the parent's later draws", () => {
  const parent = Rng.seeded(11);
  const child = parent.split();
  const again = Rng.seeded(11).split();
  assert.deepEqual(child.state(), again.state());
  const childDraws = Array.from({ length: 50 }, () => child.next());
  const parentDraws = Array.from({ length: 50 }, () => parent.next());
  assert.equal(childDraws.filter((x) => parentDraws.includes(x)).length, 0);
  assert.notDeepEqual(parent.split().state(), parent.split().state());
});
