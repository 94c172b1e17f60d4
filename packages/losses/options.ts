/**
 * Option schemas of losses: each option has a type, an optional default and
 * range, and a description. {@link validateOptions} fills defaults and rejects
 * unknown options (naming the closest valid one) and values of the wrong type.
 *
 * Option names are snake_case, as in the trainer's YAML `loss_options`.
 *
 * @module
 */

/** Value kinds an option may have. */
export type OptionKind =
  | "number"
  | "integer"
  | "boolean"
  | "string"
  | "numbers"
  | "weights"
  | "object";

/** The TypeScript type of an option kind. */
export type OptionValue<K extends OptionKind> = K extends "number" | "integer" ? number
  : K extends "boolean" ? boolean
  : K extends "string" ? string
  : K extends "numbers" ? number[]
  : K extends "weights" ? Record<string, number>
  : Record<string, unknown>;

/** One option: its kind, default, allowed range or choices, and meaning. */
export interface OptionSpec<K extends OptionKind = OptionKind> {
  /** Value kind (`numbers`: number array; `weights`: name → number map; `object`: any map). */
  kind: K;
  /** What it does (shown in errors and the README). */
  description: string;
  /** Value when the user gives none; without one the option may be left out (undefined). */
  default?: OptionValue<K>;
  /** Must be given. */
  required?: boolean;
  /** Smallest allowed number (inclusive). */
  min?: number;
  /** Numbers must be strictly greater than this. */
  greaterThan?: number;
  /** Allowed strings. */
  choices?: readonly string[];
}

/** Options of one loss, by name. */
export type OptionSchema = Record<string, OptionSpec>;

/** Resolved options: defaulted or required options are present, others may be undefined. */
export type ResolvedOptions<S extends OptionSchema> = {
  [K in keyof S]: S[K] extends { default: unknown } | { required: true } ? OptionValue<S[K]["kind"]>
    : OptionValue<S[K]["kind"]> | undefined;
};

/** Helper that keeps the literal kinds of a schema (for typed factories). */
export function defineOptions<S extends OptionSchema>(schema: S): S {
  return schema;
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const cols = b.length + 1;
  const d = new Uint32Array((a.length + 1) * cols);
  for (let i = 0; i <= a.length; i++) d[i * cols] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[(i - 2) * cols + j - 2]! + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return d[a.length * cols + b.length]!;
}

/** The candidate closest to `word` (case-insensitive edit distance; ties: first). */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined, bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  return best;
}

function describeKind(spec: OptionSpec): string {
  const range = spec.greaterThan !== undefined
    ? ` > ${spec.greaterThan}`
    : spec.min !== undefined
    ? ` ≥ ${spec.min}`
    : "";
  switch (spec.kind) {
    case "number":
      return `a number${range}`;
    case "integer":
      return `an integer${range}`;
    case "boolean":
      return "true or false";
    case "string":
      return spec.choices ? `one of ${spec.choices.map((c) => `"${c}"`).join(", ")}` : "a string";
    case "numbers":
      return `a list of numbers${range}`;
    case "weights":
      return `a map of names to numbers${range}`;
    case "object":
      return "a map of options";
  }
}

function inRange(v: unknown, spec: OptionSpec): boolean {
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  if (spec.greaterThan !== undefined && !(v > spec.greaterThan)) return false;
  if (spec.min !== undefined && !(v >= spec.min)) return false;
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function valid(v: unknown, spec: OptionSpec): boolean {
  switch (spec.kind) {
    case "number":
      return inRange(v, spec);
    case "integer":
      return Number.isInteger(v) && inRange(v, spec);
    case "boolean":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string" && (!spec.choices || spec.choices.includes(v));
    case "numbers":
      return Array.isArray(v) && v.every((x) => inRange(x, spec));
    case "weights":
      return isPlainObject(v) && Object.values(v).every((x) => inRange(x, spec));
    case "object":
      return isPlainObject(v);
  }
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Checks `given` against `schema` for the loss `loss` and returns the options
 * with defaults filled in. Throws on an unknown option (naming the closest
 * valid one), a value of the wrong kind or range, or a missing required one.
 */
export function validateOptions<S extends OptionSchema>(
  loss: string,
  schema: S,
  given: Readonly<Record<string, unknown>> = {},
): ResolvedOptions<S> {
  if (!isPlainObject(given)) {
    throw new TypeError(`options of loss "${loss}" must be a map, got ${show(given)}`);
  }
  const names = Object.keys(schema);
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(schema, key)) {
      const hint = closest(key, names);
      throw new Error(
        `unknown option "${key}" for loss "${loss}"` +
          (hint ? `; did you mean "${hint}"?` : "") +
          ` (valid: ${names.length ? names.join(", ") : "none"})`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const v = given[key];
    if (v === undefined || v === null) {
      if (spec.required) {
        throw new Error(`loss "${loss}" needs option "${key}" (${spec.description})`);
      }
      out[key] = structuredClone(spec.default);
      continue;
    }
    if (!valid(v, spec)) {
      throw new TypeError(
        `option "${key}" of loss "${loss}" must be ${describeKind(spec)}, got ${show(v)}`,
      );
    }
    out[key] = structuredClone(v);
  }
  return out as ResolvedOptions<S>;
}
