/**
 * Row gathers by i32 ids: `embedding` (rows of a `[V, D]` table; also index
 * select along axis 0) and `indexSelectLast` (along the last axis).
 *
 * The embedding backward is a deterministic scatter-add (WGSL has no f32
 * atomics): count ids per row (u32 atomics, order-free), exclusive scan, place
 * each token at its stable rank within its row's bucket, then one workgroup
 * per table row sums its tokens' gradients in token order. Ids outside
 * `[0, V)` read zeros and receive no gradient.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { getRuntime, grid, Params } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { enables, paramsBlock } from "../wgsl.ts";
import { normAxis } from "./map_kernel.ts";
import { reshape } from "./shape.ts";

function gatherCode(t: string): string {
  return `${enables(t)}${paramsBlock(3)}
@group(0) @binding(0) var<storage, read_write> Y: array<${t}>;
@group(0) @binding(1) var<storage, read> TABLE: array<${t}>;
@group(0) @binding(2) var<storage, read> IDS: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = pu(0u); let D = pu(1u); let V = pu(2u);
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n * D) { return; }
  let id = IDS[i / D];
  if (id < 0 || u32(id) >= V) { Y[i] = ${t}(0.0); return; }
  Y[i] = TABLE[u32(id) * D + i % D];
}`;
}

const COUNT = `${paramsBlock(2)}
@group(0) @binding(0) var<storage, read_write> COUNTS: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read> IDS: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = pu(0u); let V = pu(1u);
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let id = IDS[i];
  if (id >= 0 && u32(id) < V) { atomicAdd(&COUNTS[u32(id)], 1u); }
}`;

// Exclusive scan of V counts in one workgroup: each thread scans a chunk.
const SCAN = `${paramsBlock(2)}
@group(0) @binding(0) var<storage, read_write> OFFSETS: array<u32>;
@group(0) @binding(1) var<storage, read> COUNTS: array<u32>;
var<workgroup> part: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  let V = pu(0u); let unused = pu(1u);
  let chunk = (V + 255u) / 256u;
  let lo = min(l.x * chunk, V); let hi = min(lo + chunk, V);
  var s = 0u;
  for (var v = lo; v < hi; v++) { s += COUNTS[v]; }
  part[l.x] = s;
  workgroupBarrier();
  if (l.x == 0u) {
    var acc = 0u;
    for (var k = 0u; k < 256u; k++) { let c = part[k]; part[k] = acc; acc += c; }
  }
  workgroupBarrier();
  var acc = part[l.x];
  for (var v = lo; v < hi; v++) { OFFSETS[v] = acc; acc += COUNTS[v]; }
}`;

const PLACE = `${paramsBlock(3)}
@group(0) @binding(0) var<storage, read_write> ORDER: array<u32>;
@group(0) @binding(1) var<storage, read> IDS: array<i32>;
@group(0) @binding(2) var<storage, read> OFFSETS: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = pu(0u); let V = pu(1u);
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let id = IDS[i];
  if (id < 0 || u32(id) >= V) { return; }
  var rank = 0u;
  for (var m = 0u; m < i; m++) { if (IDS[m] == id) { rank++; } }
  ORDER[OFFSETS[u32(id)] + rank] = i;
}`;

const ACCUMULATE = `${paramsBlock(5)}
@group(0) @binding(0) var<storage, read_write> DT: array<f32>;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read> ORDER: array<u32>;
@group(0) @binding(3) var<storage, read> OFFSETS: array<u32>;
@group(0) @binding(4) var<storage, read> COUNTS: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let V = pu(0u); let D = pu(1u);
  let v = w.x + w.y * nw.x;
  if (v >= V) { return; }
  let start = OFFSETS[v]; let count = COUNTS[v];
  for (var d = l.x; d < D; d += 64u) {
    var s = 0.0;
    for (var k = 0u; k < count; k++) { s += DY[ORDER[start + k] * D + d]; }
    DT[v * D + d] = s;
  }
}`;

function scatterAddRows(dy: Tensor, ids: Tensor, V: number, D: number): Tensor {
  const rt = getRuntime();
  const n = ids.size;
  const counts = Tensor.empty([V], "u32");
  const offsets = Tensor.empty([V], "u32");
  const order = Tensor.empty([Math.max(n, 1)], "u32");
  const dt = Tensor.empty([V, D], "f32");
  rt.dispatch({
    op: "embedding-backward-zero",
    code: `${paramsBlock(1)}
@group(0) @binding(0) var<storage, read_write> C: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u;
  if (i < pu(0u)) { C[i] = 0u; }
}`,
    buffers: [counts.buffer],
    params: new Params().u32(V).buffer,
    workgroups: grid(Math.ceil(V / 256)),
  });
  const p = new Params().u32(n, V).buffer;
  rt.dispatch({
    op: "embedding-backward-count",
    code: COUNT,
    buffers: [counts.buffer, ids.buffer],
    params: p,
    workgroups: grid(Math.ceil(n / 256)),
  });
  rt.dispatch({
    op: "embedding-backward-scan",
    code: SCAN,
    buffers: [offsets.buffer, counts.buffer],
    params: new Params().u32(V, 0).buffer,
    workgroups: [1],
  });
  rt.dispatch({
    op: "embedding-backward-place",
    code: PLACE,
    buffers: [order.buffer, ids.buffer, offsets.buffer],
    params: p,
    workgroups: grid(Math.ceil(n / 256)),
  });
  rt.dispatch({
    op: "embedding-backward-accumulate",
    code: ACCUMULATE,
    buffers: [dt.buffer, dy.buffer, order.buffer, offsets.buffer, counts.buffer],
    params: new Params().u32(V, D).buffer,
    workgroups: grid(V),
  });
  for (const t of [counts, offsets, order]) t.dispose();
  return dt;
}

const embeddingOp = defineOp<Record<string, never>>({
  name: "embedding",
  forward: ([table, ids]) => {
    const [V, D] = table!.shape as [number, number];
    const y = Tensor.empty([...ids!.shape, D], table!.dtype);
    getRuntime().dispatch({
      op: "embedding",
      code: gatherCode(table!.dtype),
      buffers: [y.buffer, table!.buffer, ids!.buffer],
      params: new Params().u32(ids!.size, D, V).buffer,
      workgroups: grid(Math.ceil(ids!.size * D / 256)),
    });
    return { output: y, saved: [ids!] };
  },
  backward: (dy, { saved, inputs }) => {
    const [V, D] = inputs[0]!.shape as [number, number];
    return [scatterAddRows(dy, saved[0]!, V, D), null];
  },
});

/** Rows of `table` `[V, D]` at i32 `ids` (any shape) → `[...ids.shape, D]`. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (table.rank !== 2) throw new Error(`embedding: table must be [V, D], got ${table}`);
  if (ids.dtype !== "i32") throw new Error(`embedding: ids must be i32, got ${ids}`);
  return embeddingOp([table, ids], {});
}

const SELECT_LAST = (t: string) =>
  `${enables(t)}${paramsBlock(3)}
@group(0) @binding(0) var<storage, read_write> Y: array<${t}>;
@group(0) @binding(1) var<storage, read> X: array<${t}>;
@group(0) @binding(2) var<storage, read> IDX: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let rows = pu(0u); let N = pu(1u); let K = pu(2u);
  let i = g.x + g.y * nw.x * 256u;
  if (i >= rows * K) { return; }
  let id = IDX[i % K];
  if (id < 0 || u32(id) >= N) { Y[i] = ${t}(0.0); return; }
  Y[i] = X[(i / K) * N + u32(id)];
}`;

const SELECT_LAST_BACKWARD = `${paramsBlock(3)}
@group(0) @binding(0) var<storage, read_write> DX: array<f32>;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read> IDX: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let rows = pu(0u); let N = pu(1u); let K = pu(2u);
  let i = g.x + g.y * nw.x * 256u;
  if (i >= rows * N) { return; }
  let r = i / N; let j = i32(i % N);
  var s = 0.0;
  for (var k = 0u; k < K; k++) { if (IDX[k] == j) { s += DY[r * K + k]; } }
  DX[i] = s;
}`;

const selectLastOp = defineOp<Record<string, never>>({
  name: "index_select_last",
  forward: ([x, idx]) => {
    const N = x!.shape[x!.rank - 1]!, rows = x!.size / N, K = idx!.size;
    const y = Tensor.empty([...x!.shape.slice(0, -1), K], x!.dtype);
    getRuntime().dispatch({
      op: "index_select_last",
      code: SELECT_LAST(x!.dtype),
      buffers: [y.buffer, x!.buffer, idx!.buffer],
      params: new Params().u32(rows, N, K).buffer,
      workgroups: grid(Math.ceil(rows * K / 256)),
    });
    return { output: y, saved: [idx!] };
  },
  backward: (dy, { saved, inputs }) => {
    const shape = inputs[0]!.shape;
    const N = shape[shape.length - 1]!, K = saved[0]!.size, rows = dy.size / K;
    const dx = Tensor.empty(shape, "f32");
    getRuntime().dispatch({
      op: "index_select_last-backward",
      code: SELECT_LAST_BACKWARD,
      buffers: [dx.buffer, dy.buffer, saved[0]!.buffer],
      params: new Params().u32(rows, N, K).buffer,
      workgroups: grid(Math.ceil(rows * N / 256)),
    });
    return [dx, null];
  },
});

/**
 * Index select with i32 `indices` `[K]` along axis 0 (rows; like
 * {@link embedding}, result `[K, ...rest]`) or the last axis (result
 * `[..., K]`). Duplicate indices sum their gradients.
 */
export function indexSelect(x: Tensor, axis: number, indices: Tensor): Tensor {
  if (indices.dtype !== "i32") throw new Error(`indexSelect: indices must be i32, got ${indices}`);
  const a = normAxis("indexSelect", axis, x.rank);
  if (a === x.rank - 1) return selectLastOp([x, indices], {});
  if (a !== 0) throw new Error("indexSelect: only axis 0 and the last axis are supported");
  const rest = x.shape.slice(1);
  const flat = reshape(x, [x.shape[0]!, x.size / x.shape[0]!]);
  const rows = embedding(flat, indices);
  flat.dispose();
  const out = reshape(rows, [indices.size, ...rest]);
  rows.dispose();
  return out;
}
