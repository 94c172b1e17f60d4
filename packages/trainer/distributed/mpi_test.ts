import assert from "node:assert/strict";
import { mpiTest, runRanks, testdataScript } from "./testing.ts";
import { localRank, rankEnvironment } from "./launch.ts";

mpiTest("mpi: all-reduce, all-gather, broadcast and text gather over 2 ranks", async () => {
  const out = await runRanks(2, testdataScript("collectives.ts"));
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.results.size, 2, out.stdout);
  for (const rank of [0, 1]) {
    const r = out.results.get(rank)!;
    assert.equal(r.size, 2);
    // Σ over ranks 0 and 1 of (r + 1, −2r, 0.5).
    assert.deepEqual(r.f32, [3, -2, 1]);
    assert.deepEqual(r.f64, [3e-12, 1]);
    // Rank 0 sends [0], rank 1 sends [10, 11].
    assert.deepEqual(r.gathered, [0, 10, 11]);
    assert.deepEqual(r.offsets, [0, 1, 3]);
    assert.equal(r.text, "from rank 0: ünïcode");
    assert.deepEqual(r.texts, ["rank-0", "rank-1rank-1"]);
  }
});

Deno.test("rankEnvironment: IRFORGE_RANK_<NAME> lists give each local rank its entry", () => {
  const env = {
    IRFORGE_RANK_MESA_VK_DEVICE_SELECT: "1002:73bf, 10de:2204",
    OTHER: "x",
  };
  assert.deepEqual(rankEnvironment(env, 0), { MESA_VK_DEVICE_SELECT: "1002:73bf" });
  assert.deepEqual(rankEnvironment(env, 1), { MESA_VK_DEVICE_SELECT: "10de:2204" });
  assert.throws(() => rankEnvironment(env, 2), /IRFORGE_RANK_MESA_VK_DEVICE_SELECT has 2 entries/);
  const from = (vars: Record<string, string>) => localRank((name) => vars[name]);
  assert.equal(from({ MPI_LOCALRANKID: "3" }), 3);
  assert.equal(from({ OMPI_COMM_WORLD_LOCAL_RANK: "1" }), 1);
  assert.equal(from({}), 0);
});
