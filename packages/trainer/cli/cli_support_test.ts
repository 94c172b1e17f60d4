import assert from "node:assert/strict";
import { parseCommand, UsageError } from "./cli_support.ts";

const OPTIONS = {
  model: { type: "string" },
  out: { type: "string" },
  depth: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("parseCommand: values, required flags in one sentence, bad flags, --help", () => {
  const values = parseCommand(OPTIONS, "usage", ["model", "out"], ["--model", "m", "--out", "o"]);
  assert.deepEqual({ ...values }, { model: "m", out: "o" });
  assert.throws(
    () => parseCommand(OPTIONS, "usage", ["model", "out"], ["--model", "m"]),
    (e: unknown) =>
      e instanceof UsageError && e.message === "--model and --out are required\nusage",
  );
  assert.throws(
    () => parseCommand(OPTIONS, "usage", ["model"], ["--model", ""]),
    (e: unknown) => e instanceof UsageError && e.message === "--model is required\nusage",
  );
  assert.throws(
    () => parseCommand(OPTIONS, "usage", [], ["--bogus"]),
    (e: unknown) =>
      e instanceof UsageError && /--bogus/.test(e.message) && e.message.endsWith("\nusage"),
  );
  const printed: unknown[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void printed.push(...args);
  try {
    assert.equal(parseCommand(OPTIONS, "usage", ["model"], ["-h"]), undefined);
  } finally {
    console.log = log;
  }
  assert.deepEqual(printed, ["usage"]);
});
