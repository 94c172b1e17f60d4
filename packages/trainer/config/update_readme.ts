/**
 * Regenerates the configuration reference in `packages/trainer/README.md`:
 * `deno run -A packages/trainer/config/update_readme.ts`. The test
 * `reference_table_test.ts` fails when the README is out of date.
 *
 * @module
 */

import {
  configReferenceMarkdown,
  normalizeMarkdown,
  REFERENCE_MARKERS,
} from "./reference_table.ts";

/** Path of the README that holds the generated table. */
export const README_URL = new URL("../README.md", import.meta.url);

/** The text between the markers of `readme`. */
export function referenceRegion(readme: string): string {
  const start = readme.indexOf(REFERENCE_MARKERS.start);
  const end = readme.indexOf(REFERENCE_MARKERS.end);
  if (start < 0 || end < start) {
    throw new Error(
      `README lacks the markers ${REFERENCE_MARKERS.start} … ${REFERENCE_MARKERS.end}`,
    );
  }
  return readme.slice(start + REFERENCE_MARKERS.start.length, end);
}

/** `readme` with the text between the markers replaced by the current table. */
export function withReferenceTable(readme: string): string {
  const region = referenceRegion(readme);
  const start = readme.indexOf(REFERENCE_MARKERS.start) + REFERENCE_MARKERS.start.length;
  return readme.slice(0, start) + "\n\n" + configReferenceMarkdown() + "\n" +
    readme.slice(start + region.length);
}

/** Whether the README's table matches the schema (ignoring `deno fmt` alignment). */
export function isUpToDate(readme: string): boolean {
  return normalizeMarkdown(referenceRegion(readme)) ===
    normalizeMarkdown(configReferenceMarkdown());
}

if (import.meta.main) {
  const readme = await Deno.readTextFile(README_URL);
  if (isUpToDate(readme)) {
    console.log("packages/trainer/README.md is up to date");
  } else {
    await Deno.writeTextFile(README_URL, withReferenceTable(readme));
    // Keep the file as `deno fmt` wants it, so `deno fmt --check` stays clean.
    const fmt = new Deno.Command(Deno.execPath(), { args: ["fmt", README_URL.pathname] });
    await fmt.output();
    console.log("updated packages/trainer/README.md");
  }
}
