/**
 * The loss registry: built-in and user losses by name (and alias), created
 * with validated options.
 *
 * ```ts
 * import { createLoss, registerLoss } from "@irforge/losses";
 * registerLoss("my_loss", (o) => myLoss(o.scale), {
 *   options: { scale: { kind: "number", default: 1, description: "factor" } },
 * });
 * const loss = createLoss("my_loss", { scale: 2 });
 * ```
 *
 * @module
 */

import { closest, type OptionSchema, type ResolvedOptions, validateOptions } from "./options.ts";
import type { Loss } from "./types.ts";

/** Builds a loss from validated options. */
export type LossFactory<S extends OptionSchema> = (options: ResolvedOptions<S>) => Loss;

/** Registration details of a loss. */
export interface LossRegistration<S extends OptionSchema> {
  /** Other names that create the same loss (e.g. `info_nce`). */
  aliases?: readonly string[];
  /** The options it accepts. */
  options: S;
  /** One line saying what it computes. */
  description?: string;
}

/** What the registry knows about a loss. */
export interface LossInfo {
  /** Canonical name. */
  name: string;
  /** Aliases. */
  aliases: readonly string[];
  /** Option schema. */
  options: OptionSchema;
  /** Description. */
  description: string;
}

interface Entry extends LossInfo {
  factory: LossFactory<OptionSchema>;
}

const entries = new Map<string, Entry>();
const aliasOf = new Map<string, string>();

/**
 * Registers the loss `name` (and its aliases). Throws when the name or an
 * alias is taken. Users can register their own losses without touching this
 * package.
 */
export function registerLoss<S extends OptionSchema>(
  name: string,
  factory: LossFactory<S>,
  registration: LossRegistration<S>,
): void {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new Error(`loss name "${name}" must be snake_case (a-z, 0-9, _)`);
  }
  const aliases = registration.aliases ?? [];
  for (const n of [name, ...aliases]) {
    if (entries.has(n) || aliasOf.has(n)) throw new Error(`loss name "${n}" is already registered`);
  }
  entries.set(name, {
    name,
    aliases: [...aliases],
    options: registration.options,
    description: registration.description ?? "",
    factory: factory as unknown as LossFactory<OptionSchema>,
  });
  for (const a of aliases) aliasOf.set(a, name);
}

/** Canonical names of all registered losses, sorted. */
export function availableLosses(): string[] {
  return [...entries.keys()].sort();
}

/** The canonical name of `name` (itself or the loss it aliases), or undefined. */
export function resolveLossName(name: string): string | undefined {
  return entries.has(name) ? name : aliasOf.get(name);
}

/** Registry details of a loss (by name or alias); throws when unknown. */
export function lossInfo(name: string): LossInfo {
  const { factory: _, ...info } = lookup(name);
  return info;
}

function lookup(name: string): Entry {
  const canonical = resolveLossName(name);
  const entry = canonical === undefined ? undefined : entries.get(canonical);
  if (!entry) {
    const all = [...entries.keys(), ...aliasOf.keys()];
    const hint = closest(name, all);
    throw new Error(
      `unknown loss "${name}"` + (hint ? `; did you mean "${hint}"?` : "") +
        ` (available: ${availableLosses().join(", ")})`,
    );
  }
  return entry;
}

/**
 * Creates the loss `name` (or alias) with `options` validated against its
 * schema (unknown option → error naming the closest valid one; wrong type →
 * error).
 */
export function createLoss(name: string, options: Readonly<Record<string, unknown>> = {}): Loss {
  const entry = lookup(name);
  return entry.factory(validateOptions(entry.name, entry.options, options));
}
