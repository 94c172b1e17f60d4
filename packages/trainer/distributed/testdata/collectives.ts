// Run under mpiexec: each rank contributes rank-dependent values to every collective and
// prints what it received as `RESULT {json}`.
import { Mpi } from "../mpi.ts";

const mpi = Mpi.init({ timeoutSeconds: 60 });
const r = mpi.rank;
const f32 = await mpi.allreduceSum(Float32Array.of(r + 1, -2 * r, 0.5));
const f64 = await mpi.allreduceSum(Float64Array.of(1e-12 * (r + 1), r));
const gathered = await mpi.allgather(Float32Array.from({ length: r + 1 }, (_, i) => 10 * r + i));
const text = await mpi.broadcastText(r === 0 ? "from rank 0: ünïcode" : "ignored");
const texts = await mpi.allgatherText(`rank-${r}`.repeat(r + 1));
await mpi.barrier();
console.log(`RESULT ${
  JSON.stringify({
    rank: r,
    size: mpi.size,
    f32: [...f32],
    f64: [...f64],
    gathered: [...gathered.data],
    offsets: gathered.offsets,
    text,
    texts,
  })
}`);
mpi.finalize();
