/**
 * Writes a resolved configuration back out as YAML (every key, defaults
 * filled in) for the run directory's `config.yaml`. Parsing the text again
 * with `parseConfig` gives back the identical configuration.
 *
 * @module
 */

import { stringify } from "yaml";
import { type Config, PHASE_SECTIONS, type TrainingConfig, trainingKeys } from "./schema.ts";

/** The resolved configuration as YAML text, re-loadable by `parseConfig`. */
export function resolvedConfigYaml(config: Config): string {
  const out: Record<string, unknown> = {
    recipe: config.recipe,
    name: config.name,
    model: config.model,
    data: config.data,
    training: config.training,
  };
  for (const phase of PHASE_SECTIONS) {
    const training = config[phase];
    if (training !== null) out[phase] = phaseOverridable(training);
  }
  const header = "# Resolved irforge configuration: every key, defaults filled in.\n";
  return header + stringify(out, { lineWidth: 0 });
}

/** The keys a phase may override (output_dir, skip_phase1, … are shared by all phases). */
function phaseOverridable(training: TrainingConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(trainingKeys)) {
    if (spec.phase !== false) out[key] = training[key as keyof TrainingConfig];
  }
  return out;
}
