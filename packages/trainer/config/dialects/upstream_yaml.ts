/**
 * Reading another project's YAML configuration with line numbers, and the
 * bookkeeping every dialect shares: each upstream key is either mapped to an
 * irforge key (a {@linkcode MappedEntry}), noted (one log line saying what
 * irforge does instead), or refused with a sentence. A key a dialect does not
 * know is refused, never dropped.
 *
 * @module
 */

import { isMap, isScalar, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";
import { InputError, type InputLocation } from "@irforge/data/input-error";
import type { MappedEntry } from "../parse.ts";
import { closestMatch } from "../levenshtein.ts";

/** One key of an upstream file: its value (plain JS) and where it was written. */
export interface UpstreamValue {
  /** The value as YAML reads it. */
  value: unknown;
  /** File, line and the dotted upstream key name. */
  where: InputLocation;
  /** Its child keys when the value is a map. */
  children?: Map<string, UpstreamValue>;
}

/** A parsed upstream document: top-level keys in file order. */
export type UpstreamDocument = Map<string, UpstreamValue>;

/**
 * Parses YAML text into an {@linkcode UpstreamDocument}; a syntax error or
 * a document that is not a map is an {@linkcode InputError}.
 */
export function readUpstreamYaml(text: string, file: string): UpstreamDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const error = doc.errors[0]!;
    throw new InputError(
      { file, line: error.linePos?.[0].line },
      `YAML syntax: ${error.message.split("\n")[0]}`,
    );
  }
  const lineOf = (node: Node | null | undefined) =>
    node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  const walk = (map: YAMLMap, prefix: string): Map<string, UpstreamValue> => {
    const out = new Map<string, UpstreamValue>();
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const field = prefix ? `${prefix}.${key}` : key;
      const node = pair.value as Node | null;
      const entry: UpstreamValue = {
        value: node && typeof node === "object" && "toJS" in node
          ? (node as { toJS(d: unknown): unknown }).toJS(doc)
          : null,
        where: { file, line: lineOf(pair.key as Node), field },
      };
      if (isMap(node)) entry.children = walk(node, field);
      out.set(key, entry);
    }
    return out;
  };
  if (doc.contents === null) return new Map();
  if (!isMap(doc.contents)) {
    throw new InputError({ file, line: 1 }, "the configuration must be a YAML map");
  }
  return walk(doc.contents, "");
}

/** What translating one upstream document produced. */
export class Translation {
  /** irforge keys, each with the upstream key that set it. */
  readonly entries: MappedEntry[] = [];
  /** Upstream keys irforge cannot honour, one sentence each. */
  readonly problems: InputError[] = [];
  /** One line per upstream key whose meaning differs in irforge (logged at load). */
  readonly notes: string[] = [];
  /** `upstream key → irforge key` lines for `--print-config`. */
  readonly mapping: string[] = [];

  /** Sets irforge key `path` from the upstream key at `where`. */
  set(path: string, value: unknown, where: InputLocation): void {
    this.entries.push({ path, value, where });
    this.mapping.push(`${where.field} → ${path}: ${JSON.stringify(value)}`);
  }

  /** Sets irforge key `path` to the upstream project's default (the key was absent there). */
  setDefault(path: string, value: unknown, file: string, why: string): void {
    this.entries.push({ path, value, where: { file, field: `(default) ${why}` } });
    this.mapping.push(`(upstream default: ${why}) → ${path}: ${JSON.stringify(value)}`);
  }

  /** Records a key that maps to nothing in irforge with the reason (logged). */
  note(where: InputLocation, sentence: string): void {
    this.notes.push(`${where.field}: ${sentence}`);
    this.mapping.push(`${where.field} → (none): ${sentence}`);
  }

  /** Refuses a key with a sentence saying what is not supported. */
  refuse(where: InputLocation, sentence: string): void {
    this.problems.push(new InputError(where, sentence));
  }

  /** Refuses a key the dialect does not know, naming the closest one it does. */
  unknown(where: InputLocation, known: readonly string[], dialect: string): void {
    const key = where.field?.split(".").at(-1) ?? "";
    const near = closestMatch(key, known);
    this.refuse(
      where,
      `unknown ${dialect} key "${where.field}"` + (near ? `; did you mean "${near}"?` : ""),
    );
  }
}

/** The value of `entry` if it is a finite number, else a refusal. */
export function numberOf(t: Translation, entry: UpstreamValue): number | undefined {
  if (typeof entry.value === "number" && Number.isFinite(entry.value)) return entry.value;
  t.refuse(entry.where, `expected a number, got ${JSON.stringify(entry.value)}`);
  return undefined;
}

/** The value of `entry` if it is a boolean, else a refusal. */
export function boolOf(t: Translation, entry: UpstreamValue): boolean | undefined {
  if (typeof entry.value === "boolean") return entry.value;
  t.refuse(entry.where, `expected true or false, got ${JSON.stringify(entry.value)}`);
  return undefined;
}

/** The value of `entry` if it is a string, else a refusal. */
export function stringOf(t: Translation, entry: UpstreamValue): string | undefined {
  if (typeof entry.value === "string") return entry.value;
  t.refuse(entry.where, `expected a string, got ${JSON.stringify(entry.value)}`);
  return undefined;
}
