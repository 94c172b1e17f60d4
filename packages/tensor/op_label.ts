/**
 * The name of the registered op currently running (forward) or being
 * differentiated (`<op>.backward`): the runtime's default launch label, so
 * errors, timings and the per-op profile name the op that issued a dispatch
 * rather than its kernel. Kernels launched outside any op keep their kernel
 * name. Nested ops (an op's forward calling another op, activation
 * checkpointing's recomputation) label with the innermost op.
 *
 * @example Label work by hand
 * ```ts
 * import { currentOpLabel, withOpLabel } from "./op_label.ts";
 * withOpLabel("my_op", () => console.log(currentOpLabel())); // "my_op"
 * ```
 *
 * @module
 */

let current: string | undefined;

/** The label of the op running now, or `undefined` outside ops. */
export function currentOpLabel(): string | undefined {
  return current;
}

/** Runs `fn` with `label` as the current op label, restoring the previous one after. */
export function withOpLabel<T>(label: string, fn: () => T): T {
  const previous = current;
  current = label;
  try {
    return fn();
  } finally {
    current = previous;
  }
}
