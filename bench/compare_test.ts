import { deepEqual, equal, match, throws } from "node:assert/strict";
import {
  cellsFromSuite,
  cellsFromTorchLine,
  newestPerSuite,
  parseTorchLines,
  readSuiteFile,
  renderTables,
} from "./compare.ts";
import type { SuiteResult } from "./lib/report.ts";

const env = { date: "2026-01-01T00:00:00Z", deno: "2.9.6", v8: "x", os: "linux", cpus: 2 };

Deno.test("compare: our model step and PyTorch's meet in one row with the ratio", () => {
  const ours: SuiteResult = {
    suite: "model_step",
    shape: "full",
    environment: env,
    rows: [{ model: "mistral-small", batch: 8, length: 1024, msPerStep: 300 }],
  };
  const torch = [
    {
      workload: "model_step",
      model: "mistral-small",
      batch: 8,
      length: 1024,
      dtype: "fp32",
      msPerStep: 200,
    },
    {
      workload: "model_step",
      model: "mistral-small",
      batch: 8,
      length: 1024,
      dtype: "bf16-autocast",
      msPerStep: 100,
    },
  ];
  const md = renderTables([...cellsFromSuite(ours), ...torch.flatMap(cellsFromTorchLine)]);
  match(md, /### training step \(ms\/step\)/);
  match(md, /\| mistral-small 8×1024 \| 300 \| 200 \| 100 \| 1\.50× \| 3\.00× \|/);
});

Deno.test("compare: tiny and full shapes never share a row", () => {
  const ours: SuiteResult = {
    suite: "attention",
    shape: "tiny",
    environment: env,
    rows: [
      { layout: "blockrank", documents: 10, tokens: 176, forwardMs: 2, backwardMs: 3 },
      { kind: "growth", layout: "blockrank", timeGrowth: 9 },
    ],
  };
  const torch = {
    workload: "attention",
    layout: "flex-blockrank",
    documents: 10,
    tokens: 1664,
    dtype: "bf16",
    forwardMs: 0.1,
    backwardMs: 0.3,
  };
  const cells = [...cellsFromSuite(ours), ...cellsFromTorchLine(torch)];
  equal(cells.length, 2);
  const md = renderTables(cells);
  match(md, /\| blockrank · 10 docs \(T=176\) \| 5\.00 \| – \| – \|/);
  match(md, /\| blockrank · 10 docs \(T=1664\) \| – \| 0\.400 \| – \|/);
});

Deno.test("compare: the kernel lab's file format and the newest file per suite", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/kernels-2026-11-23T08-51-02-741Z.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      adapter: { vendor: "", architecture: "", description: "llvmpipe (LLVM 15)" },
      rows: [{ op: "matmul x·Wᵀ", shape: "64×64×64", dtype: "f32", ms: 0.9, rate: "x" }],
    }),
  );
  const result = await readSuiteFile(file);
  equal(result.suite, "kernels");
  equal(result.shape, "tiny");
  equal(result.environment.date, "2026-11-23T08:51:02.741Z");
  deepEqual(cellsFromSuite(result), [
    { table: "matmul x·Wᵀ (ms)", row: "64×64×64", column: "irforge f32", ms: 0.9 },
  ]);
  deepEqual(
    newestPerSuite([
      "r/attention-2026-01-02T00-00-00-000Z.json",
      "r/attention-2026-01-01T00-00-00-000Z.json",
      "r/peers-jax-2026-01-01T00-00-00-000Z.json",
      "r/torch.jsonl",
    ]),
    ["r/attention-2026-01-02T00-00-00-000Z.json", "r/peers-jax-2026-01-01T00-00-00-000Z.json"],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compare: JSON lines without a workload are counted, broken lines name the line", () => {
  const { lines, skipped } = parseTorchLines('{"note":"x"}\n\n{"workload":"matmul"}\n', "t.jsonl");
  equal(lines.length, 1);
  equal(skipped, 1);
  throws(() => parseTorchLines('{"workload":1}\n{oops\n', "t.jsonl"), /t\.jsonl:2: not JSON/);
});
