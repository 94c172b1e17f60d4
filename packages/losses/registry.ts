/**
 * The loss registry: built-in and user losses by name (and alias), created
 * with validated options. Examples: {@link createLoss}, {@link registerLoss}.
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
 *
 * @example A loss of your own, created by name like the built-in ones
 * ```ts
 * import { mean, scale } from "@irforge/tensor";
 * import { createLoss, registerLoss } from "@irforge/losses";
 *
 * registerLoss("negative_mean_score", (options) => ({
 *   name: "negative_mean_score",
 *   options,
 *   compute(inputs) {
 *     if (!inputs.scores) throw new Error('loss "negative_mean_score" needs input "scores"');
 *     return Promise.resolve({ loss: scale(mean(inputs.scores), -options.weight) });
 *   },
 * }), {
 *   options: { weight: { kind: "number", default: 1, min: 0, description: "multiplier" } },
 *   description: "minus the mean score (an illustration)",
 * });
 * const loss = createLoss("negative_mean_score", { weight: 2 });
 * console.log(loss.options); // { weight: 2 }
 * ```
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
 *
 * @example InfoNCE with in-batch negatives: two queries, two passages each
 * ```ts
 * import { getDevice, tensor } from "@irforge/tensor";
 * import { createLoss } from "@irforge/losses";
 *
 * await getDevice();
 * const loss = createLoss("infonce", { temperature: 0.05, normalize: true });
 * const queryEmbeddings = tensor([1, 0, 0, 1], [2, 2]); // [Q, d]
 * // [Q·G, d], group-major, each group's positive first
 * const passageEmbeddings = tensor([0.9, 0.1, 0.2, 0.8, 0.1, 0.9, 0.7, 0.3], [4, 2]);
 * const { loss: value } = await loss.compute({ queryEmbeddings, passageEmbeddings });
 * console.log(await value.toArray());
 * ```
 */
export function createLoss(name: string, options: Readonly<Record<string, unknown>> = {}): Loss {
  const entry = lookup(name);
  return entry.factory(validateOptions(entry.name, entry.options, options));
}
