/**
 * One row of the configuration schema: a key's type, default, range and
 * documentation. Validation ({@linkcode checkValue}) and the README reference
 * table ({@linkcode typeText}) are both driven by these rows, so they cannot
 * drift apart.
 *
 * @module
 */

/** The value types a configuration key can have. */
export type KeyKind =
  | "bool"
  | "int"
  | "number"
  | "string"
  | "enum"
  | "int-list"
  | "modules"
  | "options";

/** Description of one configuration key. `T` is the type of its resolved value. */
export interface KeySpec<T> {
  /** What kind of value the key holds. */
  readonly kind: KeyKind;
  /** The value used when the key is absent. */
  readonly default: T;
  /** One line of documentation for the README table. */
  readonly doc: string;
  /** Whether `null` (or an empty YAML value) is accepted. */
  readonly nullable: boolean;
  /** Allowed values of an `enum` key. */
  readonly values?: readonly string[];
  /** Smallest allowed number (for lists: of each element). */
  readonly min?: number;
  /** Largest allowed number (for lists: of each element). */
  readonly max?: number;
  /** `min` itself is not allowed. */
  readonly minExclusive?: boolean;
  /** `max` itself is not allowed. */
  readonly maxExclusive?: boolean;
  /** Other names accepted for the key (e.g. `torch_dtype` for `dtype`). */
  readonly aliases?: readonly string[];
  /** For training keys: whether `phase1`/`phase2` may override it (default true). */
  readonly phase?: boolean;
}

/** Fields every builder takes. */
export interface CommonOptions {
  /** One line of documentation. */
  doc: string;
  /** Other accepted names. */
  aliases?: readonly string[];
  /** Whether distillation phases may override the key (training keys only). */
  phase?: boolean;
}

/** Numeric range options. */
export interface RangeOptions {
  /** Smallest allowed value. */
  min?: number;
  /** Largest allowed value. */
  max?: number;
  /** Exclude `min`. */
  minExclusive?: boolean;
  /** Exclude `max`. */
  maxExclusive?: boolean;
}

/** A boolean key. */
export function bool(options: CommonOptions & { default: boolean }): KeySpec<boolean> {
  return { kind: "bool", nullable: false, ...options };
}

/** A boolean key that may be `null` ("not set", decided later). */
export function optionalBool(
  options: CommonOptions & { default: boolean | null },
): KeySpec<boolean | null> {
  return { kind: "bool", nullable: true, ...options };
}

/** An integer key. */
export function int(options: CommonOptions & RangeOptions & { default: number }): KeySpec<number> {
  return { kind: "int", nullable: false, ...options };
}

/** An integer key that may be `null` ("not set"). */
export function optionalInt(
  options: CommonOptions & RangeOptions & { default: number | null },
): KeySpec<number | null> {
  return { kind: "int", nullable: true, ...options };
}

/** A floating point key. */
export function number(
  options: CommonOptions & RangeOptions & { default: number },
): KeySpec<number> {
  return { kind: "number", nullable: false, ...options };
}

/** A floating point key that may be `null` ("not set"). */
export function optionalNumber(
  options: CommonOptions & RangeOptions & { default: number | null },
): KeySpec<number | null> {
  return { kind: "number", nullable: true, ...options };
}

/** A string key that may be `null` ("not set"). */
export function optionalString(
  options: CommonOptions & { default: string | null },
): KeySpec<string | null> {
  return { kind: "string", nullable: true, ...options };
}

/** A key restricted to a fixed set of strings. */
export function oneOf<const V extends string>(
  values: readonly V[],
  options: CommonOptions & { default: V },
): KeySpec<V> {
  return { kind: "enum", nullable: false, values, ...options };
}

/** An enum key that may be `null` ("not set"). */
export function optionalOneOf<const V extends string>(
  values: readonly V[],
  options: CommonOptions & { default: V | null },
): KeySpec<V | null> {
  return { kind: "enum", nullable: true, values, ...options };
}

/** A list of integers (each within the range). */
export function intList(
  options: CommonOptions & RangeOptions & { default: number[] },
): KeySpec<number[]> {
  return { kind: "int-list", nullable: false, ...options };
}

/** A list of module names, or peft's shorthand `all-linear`. */
export function modules(
  options: CommonOptions & { default: string[] | "all-linear" },
): KeySpec<string[] | "all-linear"> {
  return { kind: "modules", nullable: false, ...options };
}

/** A free-form map of scalar options (passed through to a loss, say). */
export function options(
  options: CommonOptions & { default: Record<string, string | number | boolean> },
): KeySpec<Record<string, string | number | boolean>> {
  return { kind: "options", nullable: false, ...options };
}

/** Result of {@linkcode checkValue}: the accepted value or what is wrong. */
export type Checked = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Checks a value parsed from YAML against a key's spec. Returns the value to
 * store (lists are copied) or a sentence saying what is wrong.
 */
export function checkValue(spec: KeySpec<unknown>, value: unknown): Checked {
  if (value === null || value === undefined) {
    return spec.nullable
      ? { ok: true, value: null }
      : { ok: false, problem: `must not be empty: expected ${typeText(spec)}` };
  }
  const wrongType = (): Checked => ({
    ok: false,
    problem: `expected ${typeText(spec)}, got ${describe(value)}`,
  });
  switch (spec.kind) {
    case "bool":
      return typeof value === "boolean" ? { ok: true, value } : wrongType();
    case "int":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) return wrongType();
      if (spec.kind === "int" && !Number.isInteger(value)) return wrongType();
      const range = rangeProblem(spec, value);
      return range ? { ok: false, problem: range } : { ok: true, value };
    }
    case "string":
      return typeof value === "string" ? { ok: true, value } : wrongType();
    case "enum": {
      if (typeof value !== "string") return wrongType();
      const values = spec.values ?? [];
      if (values.includes(value)) return { ok: true, value };
      return { ok: false, problem: `expected ${typeText(spec)}, got ${describe(value)}` };
    }
    case "int-list": {
      if (!Array.isArray(value)) return wrongType();
      for (const [i, item] of value.entries()) {
        if (typeof item !== "number" || !Number.isInteger(item)) {
          return { ok: false, problem: `item ${i}: expected an integer, got ${describe(item)}` };
        }
        const range = rangeProblem(spec, item);
        if (range) return { ok: false, problem: `item ${i}: ${range}` };
      }
      return { ok: true, value: [...value] };
    }
    case "modules": {
      if (value === "all-linear") return { ok: true, value };
      if (!Array.isArray(value)) return wrongType();
      for (const [i, item] of value.entries()) {
        if (typeof item !== "string" || item === "") {
          return { ok: false, problem: `item ${i}: expected a name, got ${describe(item)}` };
        }
      }
      return { ok: true, value: [...value] };
    }
    case "options": {
      if (typeof value !== "object" || Array.isArray(value)) return wrongType();
      const out: Record<string, string | number | boolean> = {};
      for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
        if (typeof item !== "string" && typeof item !== "number" && typeof item !== "boolean") {
          return {
            ok: false,
            problem: `option "${name}": expected a string, number or bool, got ${describe(item)}`,
          };
        }
        out[name] = item;
      }
      return { ok: true, value: out };
    }
  }
}

function rangeProblem(spec: KeySpec<unknown>, value: number): string | undefined {
  const { min, max } = spec;
  const belowMin = min !== undefined && (spec.minExclusive ? value <= min : value < min);
  const aboveMax = max !== undefined && (spec.maxExclusive ? value >= max : value > max);
  if (belowMin || aboveMax) return `${value} is out of range: expected ${rangeText(spec)}`;
  return undefined;
}

/** The range of a numeric key in words, e.g. `≥ 1` or `in [0, 1)`; "" when unbounded. */
export function rangeText(spec: KeySpec<unknown>): string {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) {
    return `in ${spec.minExclusive ? "(" : "["}${min}, ${max}${spec.maxExclusive ? ")" : "]"}`;
  }
  if (min !== undefined) return `${spec.minExclusive ? ">" : "≥"} ${min}`;
  if (max !== undefined) return `${spec.maxExclusive ? "<" : "≤"} ${max}`;
  return "";
}

/** The accepted type in words, e.g. `int ≥ 1 or null`, `cosine | linear`. */
export function typeText(spec: KeySpec<unknown>): string {
  const range = rangeText(spec);
  const withRange = (name: string) => (range ? `${name} ${range}` : name);
  let text: string;
  switch (spec.kind) {
    case "bool":
      text = "bool";
      break;
    case "int":
      text = withRange("int");
      break;
    case "number":
      text = withRange("number");
      break;
    case "string":
      text = "string";
      break;
    case "enum":
      text = (spec.values ?? []).join(" | ");
      break;
    case "int-list":
      text = range ? `list of int ${range}` : "list of int";
      break;
    case "modules":
      text = "list of string | all-linear";
      break;
    case "options":
      text = "map of scalars";
      break;
  }
  return spec.nullable ? `${text} or null` : text;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}
