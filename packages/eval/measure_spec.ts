/**
 * Parses trec_eval `-m` arguments (`ndcg_cut.1,3,5,10,100`, `P.10`, `map`,
 * `all_trec`, `official`) into the measures to compute.
 *
 * @module
 */

import { type MeasureDefinition, MEASURES } from "./measures.ts";

/** A measure with the cutoffs it is computed at. */
export interface RequestedMeasure {
  /** The measure. */
  definition: MeasureDefinition;
  /** Cutoffs (sorted ascending), empty for a single-valued measure. */
  cutoffs: number[];
}

/** Names accepted besides the measures themselves (trec_eval nicknames). */
export const MEASURE_NICKNAMES: Readonly<Record<string, readonly string[]>> = {
  // trec_eval's sets restricted to what this package implements.
  official: [
    "runid",
    "num_q",
    "num_ret",
    "num_rel",
    "num_rel_ret",
    "map",
    "Rprec",
    "recip_rank",
    "P",
  ],
  all_trec: [
    "runid",
    "num_q",
    "num_ret",
    "num_rel",
    "num_rel_ret",
    "map",
    "Rprec",
    "recip_rank",
    "P",
    "recall",
    "map_cut",
    "ndcg_cut",
  ],
};

/** The parsed `-m` list: which measures, in trec_eval's print order. */
export interface MeasureSelection {
  /** Print `runid` in the summary. */
  runid: boolean;
  /** Print `num_q` in the summary. */
  numQ: boolean;
  /** Computed measures in print order. */
  measures: RequestedMeasure[];
}

/** An `-m` argument that names no known measure or has bad parameters. */
export class MeasureSpecError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MeasureSpecError";
  }
}

function parseCutoffs(name: string, text: string): number[] {
  const cutoffs = text.split(",").map((part) => {
    const value = Number(part);
    if (part.trim() === "" || !Number.isInteger(value) || value <= 0) {
      throw new MeasureSpecError(
        `measure "${name}": cutoff "${part}" is not a positive integer`,
      );
    }
    return value;
  });
  cutoffs.sort((a, b) => a - b);
  for (let i = 1; i < cutoffs.length; i++) {
    if (cutoffs[i] === cutoffs[i - 1]) {
      throw new MeasureSpecError(`measure "${name}": duplicate cutoff ${cutoffs[i]}`);
    }
  }
  return cutoffs;
}

/**
 * Parses `-m` arguments as trec_eval does: `name` or `name.c1,c2,…`; the
 * first parameters given for a measure win; output follows trec_eval's
 * measure order, not the argument order. No argument means `official`.
 */
export function parseMeasureSpecs(specs: readonly string[]): MeasureSelection {
  const marked = new Set<string>();
  const params = new Map<string, string>();
  for (const spec of specs.length ? specs : ["official"]) {
    const dot = spec.indexOf(".");
    const name = dot >= 0 ? spec.slice(0, dot) : spec;
    if (dot >= 0) {
      const text = spec.slice(dot + 1);
      if (text === "") throw new MeasureSpecError(`measure "${name}": empty parameter list`);
      if (!params.has(name)) params.set(name, text);
    }
    const nickname = MEASURE_NICKNAMES[name];
    if (nickname) {
      for (const n of nickname) marked.add(n);
      continue;
    }
    if (name !== "runid" && name !== "num_q" && !MEASURES.some((m) => m.name === name)) {
      const known = [
        "runid",
        "num_q",
        ...MEASURES.map((m) => m.name),
        ...Object.keys(MEASURE_NICKNAMES),
      ];
      throw new MeasureSpecError(`unknown measure "${name}" (known: ${known.join(", ")})`);
    }
    marked.add(name);
  }
  const measures: RequestedMeasure[] = [];
  for (const definition of MEASURES) {
    if (!marked.has(definition.name)) continue;
    const text = params.get(definition.name);
    let cutoffs: number[] = [];
    if (definition.defaultCutoffs) {
      cutoffs = text !== undefined
        ? parseCutoffs(definition.name, text)
        : [...definition.defaultCutoffs];
    } else if (text !== undefined) {
      throw new MeasureSpecError(`measure "${definition.name}" takes no parameters`);
    }
    measures.push({ definition, cutoffs });
  }
  return { runid: marked.has("runid"), numQ: marked.has("num_q"), measures };
}

/** The printed names of a requested measure (`P_10`, `map`). */
export function measureNames(requested: RequestedMeasure): string[] {
  const { definition, cutoffs } = requested;
  return definition.defaultCutoffs ? cutoffs.map((k) => `${definition.name}_${k}`) : [
    definition.name,
  ];
}
