/**
 * Locates the shared real-data folder (`../shared` beside the repository, or
 * `IRFORGE_SHARED`). Tests use {@link sharedPathOrSkip} to skip with a
 * visible reason when the data is absent; nothing is ever downloaded.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The shared folder: `$IRFORGE_SHARED`, else `<repo>/../shared`. */
export function sharedRoot(): string {
  const fromEnv = Deno.env.get("IRFORGE_SHARED");
  return fromEnv && fromEnv.length > 0 ? resolve(fromEnv) : resolve(repoRoot, "..", "shared");
}

/** Absolute path of `parts` under the shared folder (it may not exist). */
export function sharedPath(...parts: string[]): string {
  return join(sharedRoot(), ...parts);
}

/**
 * Returns the path under the shared folder when it exists; otherwise prints
 * why the caller is skipping and returns `undefined`.
 */
export function sharedPathOrSkip(what: string, ...parts: string[]): string | undefined {
  const path = sharedPath(...parts);
  if (existsSync(path)) return path;
  console.warn(
    `skipped ${what}: ${path} is absent (set IRFORGE_SHARED to the folder holding data/ and fixtures/)`,
  );
  return undefined;
}

/** `true` when `parts` exist under the shared folder (for `ignore:` in tests). */
export function hasShared(...parts: string[]): boolean {
  return existsSync(sharedPath(...parts));
}
