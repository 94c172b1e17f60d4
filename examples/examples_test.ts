import assert from "node:assert/strict";
import { buildTask, builtRecipes, loadConfig } from "@irforge/trainer";

const dir = new URL(".", import.meta.url).pathname;

Deno.test("examples: every config validates; unbuilt recipes refuse clearly", async () => {
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".yaml"))
    .map((e) => e.name).sort();
  assert.ok(files.length >= 5, `expected the example configs, found ${files}`);
  for (const file of files) {
    const config = await loadConfig(`${dir}${file}`);
    if (!builtRecipes().includes(config.recipe)) {
      assert.throws(
        () => buildTask(config),
        new RegExp(`recipe ${config.recipe} is not built yet`),
        file,
      );
    }
  }
});
