import assert from "node:assert/strict";
import { blockRankMask, isVisible, maskFromArrays, type MaskMetadata } from "./mask_metadata.ts";
import { buildTileTable, FULL_TILE_BIT } from "./tile_table.ts";
import { seededRandom } from "./test_support.ts";

/** Brute-force state of a tile pair: 0 none, 1 some, 2 all (within the row). */
function bruteForce(meta: MaskMetadata, b: number, qt: number, kt: number, br: number, bc: number) {
  let any = false, all = true;
  for (let i = qt * br; i < (qt + 1) * br; i++) {
    for (let j = kt * bc; j < (kt + 1) * bc; j++) {
      const seen = i < meta.length && j < meta.length && isVisible(meta, b, i, j);
      any ||= seen;
      all &&= seen;
    }
  }
  return { any, all };
}

function checkTable(meta: MaskMetadata, br: number, bc: number) {
  const table = buildTileTable(meta, br, bc);
  let active = 0;
  for (let b = 0; b < meta.batch; b++) {
    for (let qt = 0; qt < table.numQueryTiles; qt++) {
      const list = b * table.numQueryTiles + qt;
      const entries = [...table.forward.entries.slice(
        table.forward.offsets[list],
        table.forward.offsets[list + 1],
      )];
      for (let kt = 0; kt < table.numKeyTiles; kt++) {
        const truth = bruteForce(meta, b, qt, kt, br, bc);
        const entry = entries.find((e) => (e & ~FULL_TILE_BIT) === kt);
        assert.equal(entry !== undefined, truth.any, `row ${b} tiles (${qt}, ${kt}) active`);
        if (entry !== undefined && (entry & FULL_TILE_BIT) !== 0) {
          assert.ok(truth.all, `row ${b} tiles (${qt}, ${kt}) marked full but is not`);
        }
        if (entry !== undefined) {
          active++;
          const back = b * table.numKeyTiles + kt;
          const reverse = [...table.backward.entries.slice(
            table.backward.offsets[back],
            table.backward.offsets[back + 1],
          )];
          assert.ok(reverse.includes(entry - kt + qt), `backward list of key tile ${kt} has ${qt}`);
        }
      }
    }
  }
  assert.equal(active, table.activeCount);
  assert.equal(table.backward.entries.length, table.activeCount);
  return table;
}

Deno.test("tile table matches a brute-force scan on random metadata", () => {
  const noise = seededRandom(7, 4 * 45);
  const t = 45;
  const segment: number[][] = [], block: number[][] = [], kind: number[][] = [];
  for (let b = 0; b < 2; b++) {
    segment.push(Array.from({ length: t }, (_, n) => n < 3 ? -1 : Math.floor(n / 20)));
    block.push(Array.from({ length: t }, (_, n) => Math.floor(n / 7)));
    kind.push(Array.from({ length: t }, (_, n) => Math.floor((noise[b * t + n]! + 1) * 1.5)));
  }
  for (const window of [0, 9]) {
    const meta = maskFromArrays({ segment, block, kind, window });
    for (const [br, bc] of [[8, 8], [4, 16], [16, 4], [5, 3]]) checkTable(meta, br!, bc!);
  }
});

Deno.test("causal tiles below the diagonal are marked full", () => {
  const meta = maskFromArrays({ segment: [new Array(32).fill(0)] });
  const table = checkTable(meta, 8, 8);
  assert.equal(table.activeCount, 10); // 4·5/2 tiles on or below the diagonal
  assert.equal(table.fullCount, 6); // strictly below
});

Deno.test("BlockRank active tiles grow linearly with the number of documents", () => {
  const docLength = 32, tile = 16;
  const counts: number[] = [];
  for (const documents of [4, 8, 16]) {
    const length = 16 + documents * docLength + 16;
    const meta = blockRankMask({
      length,
      rows: [{ instruction: 16, documents: new Array(documents).fill(docLength), query: 16 }],
    });
    const table = checkTable(meta, tile, tile);
    counts.push(table.activeCount);
    const dense = Math.ceil(length / tile) * (Math.ceil(length / tile) + 1) / 2;
    assert.ok(table.activeCount < dense, `${table.activeCount} < causal ${dense}`);
  }
  // Each document adds the same number of tiles: prefix column + its own triangle + query row.
  const perDocument = (counts[1]! - counts[0]!) / 4;
  assert.equal(counts[2]! - counts[1]!, perDocument * 8);
  assert.equal(perDocument, 2 + 3 + 2); // 2 rows × prefix tile, causal triangle of 2×2, query row
});
