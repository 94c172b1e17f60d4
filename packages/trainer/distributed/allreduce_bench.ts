/**
 * Measures `MPI_Allreduce` (f32 sum, the data-parallel step's packed buffer)
 * on this machine: run it under `mpiexec -np N`; rank 0 prints one line per
 * size with the median time of `--reps` calls and the bus bandwidth
 * (2·(N−1)/N · bytes / time, the usual all-reduce convention).
 *
 * ```sh
 * mpiexec -np 2 deno run -A packages/trainer/distributed/allreduce_bench.ts --mb 1,8,32,128
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Mpi } from "./mpi.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "0.06,1,8,32,128" },
    reps: { type: "string", default: "10" },
  },
});
const mpi = Mpi.init({ timeoutSeconds: 600 });
const reps = Number(values.reps);
for (const mb of values.mb!.split(",").map(Number)) {
  const n = Math.round((mb * 1024 * 1024) / 4);
  const data = Float32Array.from({ length: n }, (_, i) => (i % 97) * 0.01 + mpi.rank);
  await mpi.allreduceSum(data); // warm-up (connection set-up, page faults)
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    await mpi.barrier();
    const t0 = performance.now();
    await mpi.allreduceSum(data);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const bus = (2 * (mpi.size - 1) / mpi.size) * n * 4 / (median / 1000) / 1e9;
  if (mpi.rank === 0) {
    console.log(
      `${(n * 4 / 1024 / 1024).toFixed(2)} MiB: median ${median.toFixed(2)} ms ` +
        `(min ${times[0]!.toFixed(2)}, max ${times[times.length - 1]!.toFixed(2)}), ` +
        `bus ${bus.toFixed(2)} GB/s, ${mpi.size} ranks`,
    );
  }
}
mpi.finalize();
