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
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor, zeros } from "../tensor.ts";
import { normAxis } from "./map_kernel.ts";
import { reshape } from "./shape.ts";

const GATHER = defineKernel({
  name: "embedding",
  key: ({ t }: { t: string }) => t,
  uniforms: { n: "u32", D: "u32", V: "u32" },
  bindings: ({ t }) => ({
    Y: { type: `array<${t}>`, access: "read_write" },
    TABLE: { type: `array<${t}>` },
    IDS: { type: "array<i32>" },
  }),
  source: ({ t }) => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let D = P.D; let V = P.V;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n * D) { return; }
  let id = IDS[i / D];
  if (id < 0 || u32(id) >= V) { Y[i] = ${t}(0.0); return; }
  Y[i] = TABLE[u32(id) * D + i % D];
}`,
});

// Integer atomics: the counts (and so the result) do not depend on the order.
const COUNT = defineKernel({
  name: "embedding-backward-count",
  key: () => "",
  uniforms: { n: "u32", V: "u32" },
  bindings: () => ({
    COUNTS: { type: "array<atomic<u32>>", access: "read_write" },
    IDS: { type: "array<i32>" },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let V = P.V;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let id = IDS[i];
  if (id >= 0 && u32(id) < V) { atomicAdd(&COUNTS[u32(id)], 1u); }
}`,
});

// Exclusive scan of V counts in one workgroup: each thread scans a chunk.
const SCAN = defineKernel({
  name: "embedding-backward-scan",
  key: () => "",
  uniforms: { V: "u32" },
  bindings: () => ({
    OFFSETS: { type: "array<u32>", access: "read_write" },
    COUNTS: { type: "array<u32>" },
  }),
  source: () => `
var<workgroup> part: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  let V = P.V;
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
}`,
});

const PLACE = defineKernel({
  name: "embedding-backward-place",
  key: () => "",
  uniforms: { n: "u32", V: "u32" },
  bindings: () => ({
    ORDER: { type: "array<u32>", access: "read_write" },
    IDS: { type: "array<i32>" },
    OFFSETS: { type: "array<u32>" },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let V = P.V;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let id = IDS[i];
  if (id < 0 || u32(id) >= V) { return; }
  var rank = 0u;
  for (var m = 0u; m < i; m++) { if (IDS[m] == id) { rank++; } }
  ORDER[OFFSETS[u32(id)] + rank] = i;
}`,
});

const ACCUMULATE = defineKernel({
  name: "embedding-backward-accumulate",
  key: () => "",
  uniforms: { V: "u32", D: "u32" },
  bindings: () => ({
    DT: { type: "array<f32>", access: "read_write" },
    DY: { type: "array<f32>" },
    ORDER: { type: "array<u32>" },
    OFFSETS: { type: "array<u32>" },
    COUNTS: { type: "array<u32>" },
  }),
  source: () => `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let V = P.V; let D = P.D;
  let v = w.x + w.y * nw.x;
  if (v >= V) { return; }
  let start = OFFSETS[v]; let count = COUNTS[v];
  for (var d = l.x; d < D; d += 64u) {
    var s = 0.0;
    for (var k = 0u; k < count; k++) { s += DY[ORDER[start + k] * D + d]; }
    DT[v * D + d] = s;
  }
}`,
});

function scatterAddRows(dy: Tensor, ids: Tensor, V: number, D: number): Tensor {
  const rt = getRuntime();
  const n = ids.size;
  const counts = zeros([V], "u32");
  const offsets = Tensor.empty([V], "u32");
  const order = Tensor.empty([Math.max(n, 1)], "u32");
  const dt = Tensor.empty([V, D], "f32");
  const scatter = grid(Math.ceil(n / 256));
  rt.launch(COUNT, undefined, { COUNTS: counts.buffer, IDS: ids.buffer }, { n, V }, scatter);
  rt.launch(SCAN, undefined, { OFFSETS: offsets.buffer, COUNTS: counts.buffer }, { V }, [1]);
  rt.launch(
    PLACE,
    undefined,
    { ORDER: order.buffer, IDS: ids.buffer, OFFSETS: offsets.buffer },
    { n, V },
    scatter,
  );
  rt.launch(
    ACCUMULATE,
    undefined,
    {
      DT: dt.buffer,
      DY: dy.buffer,
      ORDER: order.buffer,
      OFFSETS: offsets.buffer,
      COUNTS: counts.buffer,
    },
    { V, D },
    grid(V),
  );
  for (const t of [counts, offsets, order]) t.dispose();
  return dt;
}

const embeddingOp = defineOp<Record<string, never>>({
  name: "embedding",
  forward: ([table, ids]) => {
    const [V, D] = table!.shape as [number, number];
    const y = Tensor.empty([...ids!.shape, D], table!.dtype);
    getRuntime().launch(
      GATHER,
      { t: table!.dtype },
      { Y: y.buffer, TABLE: table!.buffer, IDS: ids!.buffer },
      { n: ids!.size, D, V },
      grid(Math.ceil(ids!.size * D / 256)),
    );
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

const SELECT_LAST = defineKernel({
  name: "index_select_last",
  key: ({ t }: { t: string }) => t,
  uniforms: { rows: "u32", N: "u32", K: "u32" },
  bindings: ({ t }) => ({
    Y: { type: `array<${t}>`, access: "read_write" },
    X: { type: `array<${t}>` },
    IDX: { type: "array<i32>" },
  }),
  source: ({ t }) => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let rows = P.rows; let N = P.N; let K = P.K;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= rows * K) { return; }
  let id = IDX[i % K];
  if (id < 0 || u32(id) >= N) { Y[i] = ${t}(0.0); return; }
  Y[i] = X[(i / K) * N + u32(id)];
}`,
});

const SELECT_LAST_BACKWARD = defineKernel({
  name: "index_select_last-backward",
  key: () => "",
  uniforms: { rows: "u32", N: "u32", K: "u32" },
  bindings: () => ({
    DX: { type: "array<f32>", access: "read_write" },
    DY: { type: "array<f32>" },
    IDX: { type: "array<i32>" },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let rows = P.rows; let N = P.N; let K = P.K;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= rows * N) { return; }
  let r = i / N; let j = i32(i % N);
  var s = 0.0;
  for (var k = 0u; k < K; k++) { if (IDX[k] == j) { s += DY[r * K + k]; } }
  DX[i] = s;
}`,
});

const selectLastOp = defineOp<Record<string, never>>({
  name: "index_select_last",
  forward: ([x, idx]) => {
    const N = x!.shape[x!.rank - 1]!, rows = x!.size / N, K = idx!.size;
    const y = Tensor.empty([...x!.shape.slice(0, -1), K], x!.dtype);
    getRuntime().launch(
      SELECT_LAST,
      { t: x!.dtype },
      { Y: y.buffer, X: x!.buffer, IDX: idx!.buffer },
      { rows, N, K },
      grid(Math.ceil(rows * K / 256)),
    );
    return { output: y, saved: [idx!] };
  },
  backward: (dy, { saved, inputs }) => {
    const shape = inputs[0]!.shape;
    const N = shape[shape.length - 1]!, K = saved[0]!.size, rows = dy.size / K;
    const dx = Tensor.empty(shape, "f32");
    getRuntime().launch(
      SELECT_LAST_BACKWARD,
      undefined,
      { DX: dx.buffer, DY: dy.buffer, IDX: saved[0]!.buffer },
      { rows, N, K },
      grid(Math.ceil(rows * N / 256)),
    );
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
