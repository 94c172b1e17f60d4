import assert from "node:assert/strict";
import { configReferenceMarkdown, normalizeMarkdown } from "./reference_table.ts";
import { typeText } from "./key_spec.ts";
import { dataKeys, modelKeys, trainingKeys } from "./schema.ts";
import { isUpToDate, README_URL, referenceRegion, withReferenceTable } from "./update_readme.ts";

Deno.test("configReferenceMarkdown: one row per key with its type and default", () => {
  const table = configReferenceMarkdown();
  for (const keys of [modelKeys, dataKeys, trainingKeys]) {
    for (const [key, spec] of Object.entries(keys)) {
      const row = table.split("\n").find((line) => line.startsWith(`| \`${key}\``));
      assert.ok(row, `no row for ${key}`);
      assert.ok(row.includes(typeText(spec).replaceAll("|", "\\|")), row);
      assert.ok(row.includes(spec.doc.replaceAll("|", "\\|")), row);
    }
  }
  assert.match(table, /\| `learning_rate` \| number > 0 \| `0.00005` \|/);
});

Deno.test("normalizeMarkdown: ignores table alignment only", () => {
  const a = "| a | b |\n|---|---|\n| `x` | 1 \\| 2 |\n";
  const b = "| a   | b      |\n| --- | ------ |\n| `x` | 1 \\| 2 |";
  assert.equal(normalizeMarkdown(a), normalizeMarkdown(b));
  assert.notEqual(normalizeMarkdown(a), normalizeMarkdown(b.replace("1", "3")));
});

Deno.test("packages/trainer/README.md reference table is up to date with the schema", async () => {
  const readme = await Deno.readTextFile(README_URL);
  assert.ok(
    isUpToDate(readme),
    "run: deno run -A packages/trainer/config/update_readme.ts",
  );
  const stale = readme.replace("| `lora_r`", "| `lora_rank`");
  assert.equal(isUpToDate(stale), false);
  assert.ok(isUpToDate(withReferenceTable(stale)));
  assert.ok(referenceRegion(readme).includes("`warmup_ratio`"));
});
