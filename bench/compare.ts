/**
 * Side-by-side tables for BENCHMARKS.md: reads our suites' JSON
 * (`bench/results/<suite>-<date>.json`, the newest of each suite) and the
 * PyTorch references' JSON lines (`bench/results/*.jsonl`), and prints one
 * markdown table per workload with a header naming the date, GPU, adapter
 * and Deno version. Ratio = irforge ms ÷ PyTorch ms (above 1: slower).
 * Rows only meet when their shapes are the same, so tiny CPU runs never
 * pair with full-size GPU runs.
 *
 * Usage: deno run -A bench/compare.ts [--dir bench/results] [--torch file.jsonl ...]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Row, SuiteResult } from "./lib/report.ts";

/** One timing placed in a table. */
export interface Cell {
  /** Table title. */
  table: string;
  /** Row label (includes the shape). */
  row: string;
  /** Column label (framework and dtype). */
  column: string;
  /** Milliseconds (per call or per step). */
  ms: number;
}

/** Per table: the column order and the ratio columns (ours over PyTorch). */
export const TABLES: Record<string, { columns: string[]; ratios: [string, string][] }> = {
  "matmul x·Wᵀ (ms)": {
    columns: [
      "irforge f32",
      "irforge f16",
      "irforge f32 (wall)",
      "tfjs f32",
      "jax-js f32",
      "torch fp32",
      "torch tf32",
      "torch bf16",
    ],
    ratios: [
      ["irforge f32", "torch fp32"],
      ["irforge f32", "torch tf32"],
      ["irforge f16", "torch bf16"],
      ["irforge f32 (wall)", "tfjs f32"],
      ["irforge f32 (wall)", "jax-js f32"],
    ],
  },
  "attention forward+backward (ms)": {
    columns: ["irforge f32", "torch fp32", "torch bf16"],
    ratios: [["irforge f32", "torch fp32"], ["irforge f32", "torch bf16"]],
  },
  "training step (ms/step)": {
    columns: ["irforge f32", "torch fp32", "torch bf16-autocast"],
    ratios: [["irforge f32", "torch fp32"], ["irforge f32", "torch bf16-autocast"]],
  },
  "LoRA step (ms/step)": {
    columns: ["irforge", "torch"],
    ratios: [["irforge", "torch"]],
  },
  "MLP Adam step (ms)": {
    columns: ["irforge f32", "tfjs f32", "jax-js f32", "torch fp32"],
    ratios: [["irforge f32", "tfjs f32"], ["irforge f32", "jax-js f32"]],
  },
};

const PEER_COLUMN: Record<string, string> = {
  "irforge": "irforge",
  "tfjs-webgpu": "tfjs",
  "jax-js-webgpu": "jax-js",
};

function num(r: Row, key: string): number {
  const v = r[key];
  if (typeof v !== "number") {
    throw new Error(`compare: row has no number "${key}": ${JSON.stringify(r)}`);
  }
  return v;
}

function attentionRow(layout: string, documents: number, tokens: number): string {
  return `${layout} · ${documents} docs (T=${tokens})`;
}

/**
 * Cells of one of our suite results. Unknown suites give none. The kernel
 * lab's file (`kernels-<date>.json`: `{adapter, timestamps, rows}`) has no
 * `suite` field; {@link readSuiteFile} fills it in from the file name.
 */
export function cellsFromSuite(result: SuiteResult): Cell[] {
  const cells: Cell[] = [];
  for (const r of result.rows) {
    switch (result.suite) {
      case "kernels":
        if (String(r.op).startsWith("matmul")) {
          cells.push({
            table: "matmul x·Wᵀ (ms)",
            row: String(r.shape),
            column: `irforge ${r.dtype}`,
            ms: num(r, "ms"),
          });
        }
        break;
      case "attention":
        if (r.kind === "growth") break;
        cells.push({
          table: "attention forward+backward (ms)",
          row: attentionRow(String(r.layout), num(r, "documents"), num(r, "tokens")),
          column: "irforge f32",
          ms: num(r, "forwardMs") + num(r, "backwardMs"),
        });
        break;
      case "model_step":
        cells.push({
          table: "training step (ms/step)",
          row: `${r.model} ${r.batch}×${r.length}`,
          column: "irforge f32",
          ms: num(r, "msPerStep"),
        });
        break;
      case "lora_step":
        cells.push({
          table: "LoRA step (ms/step)",
          row: `${r.model} ${r.tokens} tokens, ${r.base === "nf4" ? "NF4" : "16-bit"} base`,
          column: "irforge",
          ms: num(r, "msPerStep"),
        });
        break;
      case "peers-irforge":
      case "peers-tfjs":
      case "peers-jax": {
        const column = `${PEER_COLUMN[String(r.framework)] ?? r.framework} f32`;
        if (r.workload === "matmul") {
          // Wall clock like tfjs/jax; the kernel lab's GPU-timestamp figure is "irforge f32".
          const col = r.framework === "irforge" ? "irforge f32 (wall)" : column;
          cells.push({
            table: "matmul x·Wᵀ (ms)",
            row: String(r.shape),
            column: col,
            ms: num(r, "ms"),
          });
        } else if (r.workload === "mlp_step") {
          cells.push({
            table: "MLP Adam step (ms)",
            row: String(r.shape),
            column,
            ms: num(r, "ms"),
          });
        }
        break;
      }
    }
  }
  return cells;
}

/** Cells of one PyTorch JSON line (see `bench/reference/common.py`). */
export function cellsFromTorchLine(line: Row): Cell[] {
  switch (line.workload) {
    case "matmul":
      return [{
        table: "matmul x·Wᵀ (ms)",
        row: String(line.shape),
        column: `torch ${line.dtype}`,
        ms: num(line, "ms"),
      }];
    case "attention": {
      const layout = line.layout === "sdpa-causal" ? "dense causal" : "blockrank";
      return [{
        table: "attention forward+backward (ms)",
        row: attentionRow(layout, num(line, "documents"), num(line, "tokens")),
        column: `torch ${line.dtype}`,
        ms: num(line, "forwardMs") + num(line, "backwardMs"),
      }];
    }
    case "model_step":
      return [{
        table: "training step (ms/step)",
        row: `${line.model} ${line.batch}×${line.length}`,
        column: `torch ${line.dtype}`,
        ms: num(line, "msPerStep"),
      }];
    case "lora_step":
      return [{
        table: "LoRA step (ms/step)",
        row: `${line.model} ${line.tokens} tokens, ${line.base === "nf4" ? "NF4" : "16-bit"} base`,
        column: "torch",
        ms: num(line, "msPerStep"),
      }];
    case "mlp_step":
      return [{
        table: "MLP Adam step (ms)",
        row: String(line.shape),
        column: "torch fp32",
        ms: num(line, "ms"),
      }];
    default:
      return [];
  }
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "–";
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toPrecision(3);
}

/** Markdown tables of `cells`; tables and columns with no cell are left out. */
export function renderTables(cells: Cell[]): string {
  const out: string[] = [];
  for (const [title, spec] of Object.entries(TABLES)) {
    const mine = cells.filter((c) => c.table === title);
    if (mine.length === 0) continue;
    const columns = spec.columns.filter((col) => mine.some((c) => c.column === col));
    const ratios = spec.ratios.filter(([a, b]) => columns.includes(a) && columns.includes(b));
    const rows = [...new Set(mine.map((c) => c.row))];
    const header = ["", ...columns, ...ratios.map(([a, b]) => `${a} ÷ ${b}`)];
    out.push(
      `### ${title}`,
      "",
      `| ${header.join(" | ")} |`,
      `| ${header.map(() => "---").join(" | ")} |`,
    );
    for (const row of rows) {
      const at = (col: string) => mine.find((c) => c.row === row && c.column === col)?.ms;
      const ratioCells = ratios.map(([a, b]) => {
        const x = at(a), y = at(b);
        return x !== undefined && y !== undefined ? `${(x / y).toFixed(2)}×` : "–";
      });
      out.push(`| ${[row, ...columns.map((c) => formatMs(at(c))), ...ratioCells].join(" | ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

/** Reads one of our result files, naming the suite from the file name when the file does not. */
export async function readSuiteFile(file: string): Promise<SuiteResult> {
  const raw = JSON.parse(await Deno.readTextFile(file)) as Partial<SuiteResult> & {
    adapter?: { vendor: string; architecture: string; description: string };
  };
  const stem = file.split("/").pop()!.match(/^(.*)-\d{4}-\d{2}-\d{2}T/)?.[1] ?? file;
  const date = file.match(/(\d{4}-\d{2}-\d{2}T\d{2})-(\d{2})-(\d{2})-(\d{3})Z/);
  return {
    suite: raw.suite ?? stem,
    shape: raw.shape ??
      (raw.adapter && /llvmpipe|lavapipe/i.test(raw.adapter.description) ? "tiny" : "full"),
    environment: raw.environment ?? {
      date: date ? `${date[1]}:${date[2]}:${date[3]}.${date[4]}Z` : "?",
      deno: "?",
      v8: "?",
      os: "?",
      cpus: 0,
      adapter: raw.adapter,
      cpuAdapter: raw.adapter && /llvmpipe|lavapipe|swiftshader/i.test(raw.adapter.description),
    },
    rows: raw.rows ?? [],
  };
}

/** The newest file of each suite in `files` (names `<suite>-<ISO date>.json`). */
export function newestPerSuite(files: string[]): string[] {
  const bySuite = new Map<string, string>();
  for (const f of files.filter((f) => f.endsWith(".json")).sort()) {
    const name = f.split("/").pop()!;
    const m = name.match(/^(.*)-\d{4}-\d{2}-\d{2}T/);
    if (m) bySuite.set(m[1]!, f);
  }
  return [...bySuite.values()];
}

/** Parses JSON lines; lines that are not objects with a `workload` are skipped and counted. */
export function parseTorchLines(text: string, file: string): { lines: Row[]; skipped: number } {
  const lines: Row[] = [];
  let skipped = 0;
  text.split("\n").forEach((raw, i) => {
    const t = raw.trim();
    if (t === "") return;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    if (typeof v === "object" && v !== null && "workload" in v) lines.push(v as Row);
    else skipped++;
  });
  return { lines, skipped };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: "bench/results" },
      torch: { type: "string", multiple: true },
    },
  });
  const dir = values.dir!;
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(`${dir}/${e.name}`);
  const ours = newestPerSuite(names);
  const torchFiles = values.torch ?? names.filter((n) => n.endsWith(".jsonl")).sort();
  const cells: Cell[] = [];
  const environments: string[] = [];
  for (const f of ours) {
    const result = await readSuiteFile(f);
    const found = cellsFromSuite(result);
    if (found.length === 0) continue;
    cells.push(...found);
    const e = result.environment;
    environments.push(
      `- ${result.suite} (${f.split("/").pop()}): ${e.date}, ${
        e.webgpu ? `webgpu ${e.webgpu.provider}, ` : ""
      }adapter ${e.adapter?.description ?? "?"}${
        e.cpuAdapter ? " (CPU adapter)" : ""
      }, Deno ${e.deno}, shape ${result.shape}`,
    );
  }
  for (const f of torchFiles) {
    const { lines, skipped } = parseTorchLines(await Deno.readTextFile(f), f);
    for (const line of lines) cells.push(...cellsFromTorchLine(line));
    const first = lines[0];
    if (first) {
      environments.push(
        `- PyTorch (${
          f.split("/").pop()
        }): ${first.date}, GPU ${first.device}, torch ${first.torch}, CUDA ${first.cuda}` +
          (skipped > 0 ? ` (${skipped} non-measurement lines skipped)` : ""),
      );
    }
  }
  if (cells.length === 0) {
    console.error(`compare: no results in ${dir} (run the suites first, see bench/README.md)`);
    Deno.exit(1);
  }
  console.log(
    [
      "Measured with:",
      ...environments,
      "",
      "Ratio = irforge ms ÷ other ms (above 1: irforge is slower).",
      "",
    ]
      .join("\n"),
  );
  console.log(renderTables(cells));
}
