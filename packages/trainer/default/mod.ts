/**
 * The embedded default run: `deno task train` with no `--config` trains a
 * tiny randomly initialised Llama as a bi-encoder on the synthetic
 * collection shipped in `data/` and prints held-out nDCG@10 before and after.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";

/** This directory (the default config refers to files in it). */
export const DEFAULT_DIR: string = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

/** Path of the default configuration file. */
export const DEFAULT_CONFIG_PATH = `${DEFAULT_DIR}/default.yaml`;

/** The default configuration with `--set` overrides applied. */
export async function defaultConfig(sets: string[] = []): Promise<Config> {
  const text = (await Deno.readTextFile(DEFAULT_CONFIG_PATH)).replaceAll(
    "$DEFAULT_DIR",
    DEFAULT_DIR,
  );
  return parseConfig(text, DEFAULT_CONFIG_PATH, sets);
}
