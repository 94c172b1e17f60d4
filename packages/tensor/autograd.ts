/**
 * Tape-based reverse-mode autograd.
 *
 * Every registered op (see `registry.ts`) that runs while grad mode is on and
 * has an input with `requiresGrad` appends a node to the global tape, holding
 * shared references to the tensors its backward needs. `backward(loss)` walks
 * the tape in reverse creation order (a valid topological order), adds the
 * gradients of leaf tensors into their `.grad` (so repeated backward calls
 * accumulate, for gradient accumulation), then releases the whole tape and
 * every saved tensor. Backward rules run with grad mode off (no double
 * backward).
 *
 * @module
 */

import type { TapeNode } from "./autograd_types.ts";
import { launchMap } from "./ops/map_kernel.ts";
import { keep } from "./scope.ts";
import { ones, Tensor, type TensorData, zeros } from "./tensor.ts";
import type { DType } from "./dtype.ts";

let gradEnabled = true;
let tape: TapeNode[] = [];

/** Whether ops currently record onto the tape. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` with recording off (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** Runs `fn` with recording set to `enabled` (internal helper of ops). */
export function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** Appends a node (internal: `runOp` calls it). */
export function record(node: TapeNode): void {
  tape.push(node);
}

/** Number of nodes on the tape (tests and leak checks). */
export function tapeLength(): number {
  return tape.length;
}

/** What the tape holds: nodes, saved tensor references, and the bytes those reference. */
export interface TapeStats {
  /** Recorded op applications. */
  nodes: number;
  /** Saved tensor references (several may share one storage). */
  savedTensors: number;
  /** Sum of the saved tensors' data bytes (shared storage counted once per reference). */
  savedBytes: number;
}

/** Counts what the current tape keeps alive (tests, memory reports). */
export function tapeStats(): TapeStats {
  let savedTensors = 0;
  let savedBytes = 0;
  for (const node of tape) {
    savedTensors += node.saved.length;
    for (const t of node.saved) savedBytes += t.byteLength;
  }
  return { nodes: tape.length, savedTensors, savedBytes };
}

/**
 * Runs `fn` with `nodes` as the tape, then puts the previous tape back
 * (internal: activation checkpointing records and backpropagates a layer on
 * a tape of its own). Ops recorded inside go into `nodes`; a `backward` or
 * `releaseTape` inside consumes `nodes` only.
 */
export function withTape<T>(nodes: TapeNode[], fn: () => T): T {
  const outer = tape;
  tape = nodes;
  try {
    return fn();
  } finally {
    tape = outer;
  }
}

/** Drops the tape and the saved tensors it holds, without computing gradients. */
export function releaseTape(): void {
  for (const node of tape) for (const t of node.saved) t.dispose();
  // Emptied in place so that a tape swapped in by `withTape` is released too.
  tape.length = 0;
  tape = [];
}

/**
 * Marks `t` as a trainable leaf (`requiresGrad = true`), detaches it from any
 * `tidy` scope and returns it. The caller owns it.
 */
export function variable(t: Tensor): Tensor {
  t.requiresGrad = true;
  return keep(t);
}

/** Uploads `data` as a trainable leaf (see {@link variable}). */
export function parameter(
  data: TensorData,
  shape: readonly number[],
  dtype: DType = "f32",
): Tensor {
  return variable(Tensor.fromArray(data, shape, dtype));
}

/** Disposes and clears the `.grad` of each tensor. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

function addGrads(a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(a.shape, a.dtype, "grad");
  const strides = a.shape.length === 0 ? [] : contiguous(a.shape);
  launchMap({
    op: "grad-accumulate",
    shape: a.shape,
    out: { tensor: out, strides },
    inputs: [{ tensor: a, strides }, { tensor: b, strides }],
    expr: "a + b",
  });
  return out;
}

function contiguous(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Backpropagates from `loss` (gradient `gradOutput`, default ones) and adds
 * the gradients into `.grad` of every leaf with `requiresGrad`. Releases the
 * tape afterwards, including nodes unrelated to `loss`. `gradOutput` stays
 * owned by the caller.
 */
export function backward(loss: Tensor, gradOutput?: Tensor): void {
  if (!loss.requiresGrad) {
    throw new Error("backward: the loss does not require grad (no input had requiresGrad)");
  }
  backwardFrom([loss], [gradOutput ?? null]);
}

/**
 * {@link backward} from several outputs at once, each with its gradient
 * (`null`: ones), e.g. a checkpointed block with two outputs. Outputs that
 * do not require grad are skipped. The gradients stay owned by the caller.
 */
export function backwardFrom(outputs: readonly Tensor[], gradOutputs: (Tensor | null)[]): void {
  outputs.forEach((out, i) => {
    const g = gradOutputs[i];
    if (g && g.size !== out.size) {
      throw new Error(`backward: gradOutput [${g.shape}] does not match output [${out.shape}]`);
    }
  });
  const grads = new Map<number, Tensor>();
  const leaves = new Map<number, Tensor>();
  const accumulate = (target: Tensor, g: Tensor) => {
    const existing = grads.get(target.id);
    if (existing) {
      // Kept: the map owns its gradients (a leaf may take this one as its .grad).
      grads.set(target.id, keep(addGrads(existing, g)));
      existing.dispose();
      g.dispose();
    } else grads.set(target.id, g);
  };
  withGradMode(false, () => {
    outputs.forEach((out, i) => {
      if (!out.requiresGrad) return;
      const g = gradOutputs[i];
      const seed = g ? g.shareAs(out.shape, true) : keep(ones(out.shape, "f32"));
      if (!out.node) leaves.set(out.id, out);
      accumulate(out, seed);
    });
    try {
      for (let n = tape.length - 1; n >= 0; n--) {
        const node = tape[n]!;
        let dy = grads.get(node.outputId);
        const extraGrads = (node.extraOutputIds ?? []).map((id) => grads.get(id) ?? null);
        if (!dy && extraGrads.every((g) => g === null)) continue;
        grads.delete(node.outputId);
        for (const id of node.extraOutputIds ?? []) grads.delete(id);
        dy ??= keep(zeros(node.outputShape ?? [], "f32"));
        const inputGrads = node.backward(dy, extraGrads);
        dy.dispose();
        for (const g of extraGrads) g?.dispose();
        node.inputs.forEach((input, i) => {
          const g = inputGrads[i];
          if (!g) return;
          keep(g);
          if (!input.requiresGrad) return g.dispose();
          if (g.size !== input.size) {
            throw new Error(
              `backward of "${node.op}": gradient [${g.shape}] for input ${i} of shape [${input.shape}]`,
            );
          }
          const shaped = g.shape.join() === input.shape.join() ? g : g.shareAs(input.shape, true);
          if (shaped !== g) g.dispose();
          if (!input.node) leaves.set(input.id, input);
          accumulate(input, shaped);
        });
      }
      for (const [id, leaf] of leaves) {
        const g = grads.get(id);
        if (!g) continue;
        grads.delete(id);
        if (leaf.grad) {
          const sum = keep(addGrads(leaf.grad, g));
          leaf.grad.dispose();
          g.dispose();
          leaf.grad = sum;
        } else leaf.grad = g;
      }
    } finally {
      for (const g of grads.values()) g.dispose();
      releaseTape();
    }
  });
}
