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
  backward,
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
  fn: (inputs: Tensor[]) => Tensor,
  views: Tensor[],
  nodes: TapeNode[],
): Tensor {
  const output = withTape(nodes, () => withGradMode(true, () => tidy(() => fn(views))));
  if (views.includes(output)) {
    withTape(nodes, releaseTape);
    throw new Error("checkpoint: fn returned one of its inputs; it must compute a new tensor");
  }
  const inside = new Set(nodes);
  for (const node of nodes) {
    for (const input of node.inputs) {
      if (input.requiresGrad && input.node && !inside.has(input.node)) {
        withTape(nodes, releaseTape);
        output.dispose();
        throw new Error(
          `checkpoint: op "${node.op}" inside fn uses ${input}, which requires grad and was computed outside fn; pass it in inputs so its gradient is not lost`,
        );
      }
    }
  }
  return output;
}

/**
 * Applies `fn` to `inputs` without keeping its activations on the tape:
 * only `inputs` are saved and `fn` runs again in the backward pass. Returns
 * what `fn` returns (a new tensor, owned like any op output). Gradients are
 * the same as for `fn(inputs)` — bit-identical when `fn` is deterministic.
 * With grad mode off this is just `fn(inputs)`.
 */
export function checkpoint(
  fn: (inputs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: CheckpointOptions = {},
): Tensor {
  for (const t of inputs) {
    if (t.disposed) throw new Error(`checkpoint: input ${t} was disposed`);
  }
  if (!isGradEnabled()) return fn([...inputs]);
  const states = options.state ?? [];
  const stateBefore = states.map((s) => s.saveState());
  const wanted = inputs.map((t) => t.requiresGrad);
  const views = leafViews(inputs, wanted);
  const nodes: TapeNode[] = [];
  let output: Tensor;
  try {
    output = runRecorded(fn, views, nodes);
  } finally {
    for (const v of views) v.dispose();
  }
  // Only whether the output needed grad was wanted from this run: drop its activations.
  withTape(nodes, releaseTape);
  if (!output.requiresGrad) return output;

  const saved = inputs.map((t) => t.shareAs(t.shape, true));
  const node: TapeNode = {
    op: "checkpoint",
    inputs: [...inputs],
    outputId: output.id,
    saved,
    backward: (dy) => {
      const again = leafViews(saved, wanted);
      const stateNow = states.map((s) => s.saveState());
      states.forEach((s, i) => s.restoreState(stateBefore[i]));
      try {
        const inner: TapeNode[] = [];
        const recomputed = runRecorded(fn, again, inner);
        try {
          if (!recomputed.requiresGrad) throw new Error("checkpoint: fn is not deterministic");
          withTape(inner, () => backward(recomputed, dy));
        } finally {
          recomputed.dispose();
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
  output.node = node;
  output.requiresGrad = true;
  record(node);
  return output;
}
