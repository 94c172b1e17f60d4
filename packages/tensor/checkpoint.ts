/**
 * Activation checkpointing: trade compute for memory by keeping only a
 * block's inputs on the tape and recomputing its activations during the
 * backward pass.
 *
 * `checkpoint(fn, inputs)` is a special tape node rather than a `defineOp`
 * op, because whether it needs a gradient depends on what `fn` uses, not
 * only on `inputs`: a decoder layer whose input hidden state is frozen still
 * has LoRA parameters that require grad. So the forward runs `fn` with
 * recording on, into a tape of its own, only to learn whether the output
 * requires grad (and to catch tensors `fn` closes over that would lose their
 * gradient); that tape is released as soon as `fn` returns, so the
 * activations live one block at a time. The backward re-runs `fn` on fresh
 * views of the saved inputs, backpropagates `dy` through the recomputed
 * tape (parameters used inside `fn` get their `.grad` exactly as without
 * checkpointing) and hands the inputs' gradients to the outer tape.
 *
 * `fn` must compute the same thing when run again: host state it advances
 * (e.g. a dropout-seed counter) must be handed over as a
 * {@link ReplayableState} so that the recomputation starts from the same
 * state. It must not use tensors that require grad and were computed outside
 * it; pass those in `inputs` (parameters, i.e. leaves, may be closed over).
 *
 * @module
 */

import type { TapeNode } from "./autograd_types.ts";
import {
  backwardFrom,
  isGradEnabled,
  record,
  releaseTape,
  withGradMode,
  withTape,
} from "./autograd.ts";
import { tidy } from "./scope.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Host state that a checkpointed function reads and advances (a dropout call
 * counter, an RNG): saved before the forward, restored for the recomputation
 * in backward, then put back to where the forward left it.
 */
export interface ReplayableState {
  /** A snapshot of the current state. */
  saveState(): unknown;
  /** Returns to a snapshot taken by {@link saveState}. */
  restoreState(state: unknown): void;
}

/** Options of {@link checkpoint}. */
export interface CheckpointOptions {
  /** State `fn` advances, rewound for the recomputation. */
  state?: readonly ReplayableState[];
}

/** Whether `x` implements {@link ReplayableState}. */
export function isReplayableState(x: unknown): x is ReplayableState {
  return typeof x === "object" && x !== null &&
    typeof (x as ReplayableState).saveState === "function" &&
    typeof (x as ReplayableState).restoreState === "function";
}

/** Views of `inputs` that share their storage but not their tape history. */
function leafViews(inputs: readonly Tensor[], requiresGrad: readonly boolean[]): Tensor[] {
  return inputs.map((t, i) => {
    const view = t.shareAs(t.shape, true);
    view.requiresGrad = requiresGrad[i]!;
    return view;
  });
}

/**
 * Runs `fn(views)` recording onto `nodes`, checking that every input of a
 * recorded op that requires grad is either a leaf or was produced inside.
 */
function runRecorded(
  fn: (inputs: Tensor[]) => Tensor[],
  views: Tensor[],
  nodes: TapeNode[],
): Tensor[] {
  const outputs = withTape(nodes, () => withGradMode(true, () => tidy(() => fn(views))));
  const release = () => {
    withTape(nodes, releaseTape);
    for (const o of outputs) o.dispose();
  };
  if (outputs.some((o) => views.includes(o))) {
    release();
    throw new Error("checkpoint: fn returned one of its inputs; it must compute a new tensor");
  }
  if (new Set(outputs).size !== outputs.length) {
    release();
    throw new Error("checkpoint: fn returned the same tensor twice");
  }
  const inside = new Set(nodes);
  for (const node of nodes) {
    for (const input of node.inputs) {
      if (input.requiresGrad && input.node && !inside.has(input.node)) {
        release();
        throw new Error(
          `checkpoint: op "${node.op}" inside fn uses ${input}, which requires grad and was computed outside fn; pass it in inputs so its gradient is not lost`,
        );
      }
    }
  }
  return outputs;
}

/**
 * Applies `fn` to `inputs` without keeping its activations on the tape:
 * only `inputs` are saved and `fn` runs again in the backward pass. Returns
 * what `fn` returns (a new tensor, owned like any op output). Gradients are
 * the same as for `fn(inputs)` — bit-identical when `fn` is deterministic.
 * With grad mode off this is just `fn(inputs)`.
 *
 * @example
 * ```ts
 * import { checkpoint, mul, Tensor, variable } from "@irforge/tensor";
 * const x = variable(Tensor.fromArray([1, 2, 3], [3]));
 * const y = checkpoint(([a]) => mul(a!, a!), [x]);
 * ```
 */
export function checkpoint(
  fn: (inputs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: CheckpointOptions = {},
): Tensor {
  return checkpointMany((views) => [fn(views)], inputs, options)[0]!;
}

/**
 * {@link checkpoint} of a block with several outputs (e.g. a decoder layer
 * that hands on its residual stream and the delta still to be added to it):
 * `fn` returns new tensors, all of which come back; the backward
 * recomputes `fn` once and backpropagates every output's gradient together.
 *
 * @example
 * ```ts
 * import { add, checkpointMany, mul, Tensor, variable } from "@irforge/tensor";
 * const x = variable(Tensor.fromArray([1, 2, 3], [3]));
 * const [sq, twice] = checkpointMany(([a]) => [mul(a!, a!), add(a!, a!)], [x]);
 * ```
 */
export function checkpointMany(
  fn: (inputs: Tensor[]) => Tensor[],
  inputs: readonly Tensor[],
  options: CheckpointOptions = {},
): Tensor[] {
  for (const t of inputs) {
    if (t.disposed) throw new Error(`checkpoint: input ${t} was disposed`);
  }
  if (!isGradEnabled()) return fn([...inputs]);
  const states = options.state ?? [];
  const stateBefore = states.map((s) => s.saveState());
  const wanted = inputs.map((t) => t.requiresGrad);
  const views = leafViews(inputs, wanted);
  const nodes: TapeNode[] = [];
  let outputs: Tensor[];
  try {
    outputs = runRecorded(fn, views, nodes);
  } finally {
    for (const v of views) v.dispose();
  }
  // Only which outputs needed grad was wanted from this run: drop its activations.
  withTape(nodes, releaseTape);
  const needGrad = outputs.map((o) => o.requiresGrad);
  if (!needGrad.some((n) => n)) return outputs;

  const saved = inputs.map((t) => t.shareAs(t.shape, true));
  const [first, ...rest] = outputs;
  const node: TapeNode = {
    op: "checkpoint",
    inputs: [...inputs],
    outputId: first!.id,
    extraOutputIds: rest.map((o) => o.id),
    outputShape: first!.shape,
    saved,
    backward: (dy, extraGrads) => {
      const again = leafViews(saved, wanted);
      const stateNow = states.map((s) => s.saveState());
      states.forEach((s, i) => s.restoreState(stateBefore[i]));
      try {
        const inner: TapeNode[] = [];
        const recomputed = runRecorded(fn, again, inner);
        try {
          if (recomputed.some((r, i) => r.requiresGrad !== needGrad[i])) {
            throw new Error("checkpoint: fn is not deterministic");
          }
          // An output that needs no gradient gets none (the tape's zeros stand in for the first).
          const grads = [dy, ...extraGrads].map((g, i) => needGrad[i] ? g : null);
          const roots = recomputed.filter((_, i) => grads[i] !== null);
          const rootGrads = grads.filter((g) => g !== null);
          if (roots.length > 0) withTape(inner, () => backwardFrom(roots, rootGrads));
        } finally {
          for (const r of recomputed) r.dispose();
          withTape(inner, releaseTape);
        }
        return again.map((view) => {
          const grad = view.grad;
          view.grad = null;
          return grad;
        });
      } finally {
        states.forEach((s, i) => s.restoreState(stateNow[i]));
        for (const v of again) {
          v.grad?.dispose();
          v.dispose();
        }
      }
    },
  };
  for (const o of outputs) {
    o.node = node;
    o.requiresGrad = true;
  }
  record(node);
  return outputs;
}
