/**
 * The op registry: each op is defined exactly once with its forward, what it
 * saves, and its backward. A definition without a `backward` must say
 * `nonDifferentiable: true`; leaving both out is a compile-time type error.
 *
 * @module
 */

import type { BackwardContext, InputMeta, TapeNode } from "./autograd_types.ts";
import { isGradEnabled, record, withGradMode } from "./autograd.ts";
import { keep, tidy } from "./scope.ts";
import { withOpLabel } from "./op_label.ts";
import type { Tensor } from "./tensor.ts";

/** What a forward returns: the output and the tensors backward needs. */
export interface ForwardResult {
  /** The new output tensor. */
  output: Tensor;
  /** Tensors (inputs or intermediates) the backward reads. */
  saved?: Tensor[];
  /** Further outputs of a multi-output op ({@link defineMultiOutputOp}). */
  extraOutputs?: Tensor[];
}

/** What every op definition has: a unique name and a forward. */
export interface OpBase<A> {
  /** Unique op name. */
  name: string;
  /**
   * Computes the output (grad mode is off inside). Temporaries it creates
   * are disposed automatically; saved ones stay alive via the tape.
   */
  forward(inputs: readonly Tensor[], attrs: A): ForwardResult;
}

/** A differentiable op: `backward` returns one gradient (or null) per input. */
export interface DifferentiableOp<A> extends OpBase<A> {
  /** Input gradients from the output gradient `dy` (grad mode off). */
  backward(dy: Tensor, ctx: BackwardContext<A>): (Tensor | null)[];
  /** Must be absent on differentiable ops. */
  nonDifferentiable?: never;
}

/** An op with no gradient (integer outputs, comparisons). */
export interface NonDifferentiableOp<A> extends OpBase<A> {
  /** Declares explicitly that no gradient flows through this op. */
  nonDifferentiable: true;
  /** Must be absent on non-differentiable ops. */
  backward?: never;
}

/** An op definition. */
export type OpDefinition<A> = DifferentiableOp<A> | NonDifferentiableOp<A>;

/** A registered op, callable on tensors. */
export type Op<A> = (inputs: readonly Tensor[], attrs: A) => Tensor;

const registry = new Map<string, OpDefinition<never>>();

/** Names of all registered ops. */
export function registeredOps(): string[] {
  return [...registry.keys()].sort();
}

/** Registers `def` (once per name) and returns the function applying it. */
export function defineOp<A>(def: OpDefinition<A>): Op<A> {
  if (registry.has(def.name)) throw new Error(`op "${def.name}" is registered twice`);
  registry.set(def.name, def as OpDefinition<never>);
  return (inputs, attrs) => runOp(def, inputs, attrs)[0]!;
}

/**
 * A differentiable op with several outputs (fusions such as residual add +
 * RMSNorm, or RoPE of queries and keys): the forward returns the first as
 * `output` and the rest as `extraOutputs`; the backward receives the first
 * output's gradient (zeros when only the others got one) and the others'
 * gradients (`null` when one got none).
 */
export interface MultiOutputOpDefinition<A> extends OpBase<A> {
  /** Input gradients from the outputs' gradients (grad mode off). */
  backward(dy: Tensor, ctx: BackwardContext<A>, extraGrads: (Tensor | null)[]): (Tensor | null)[];
}

/** Registers a multi-output op; the returned function gives every output, in order. */
export function defineMultiOutputOp<A>(
  def: MultiOutputOpDefinition<A>,
): (inputs: readonly Tensor[], attrs: A) => Tensor[] {
  if (registry.has(def.name)) throw new Error(`op "${def.name}" is registered twice`);
  const op = def as unknown as OpDefinition<A>;
  registry.set(def.name, op as OpDefinition<never>);
  return (inputs, attrs) => runOp(op, inputs, attrs);
}

function runOp<A>(def: OpDefinition<A>, inputs: readonly Tensor[], attrs: A): Tensor[] {
  for (const t of inputs) {
    if (t.disposed) throw new Error(`${def.name}: input ${t} was disposed`);
  }
  const recording = isGradEnabled() && def.backward !== undefined &&
    inputs.some((t) => t.requiresGrad);
  let saved: Tensor[] = [];
  const outputs = withGradMode(false, () =>
    tidy(() => {
      const result = withOpLabel(def.name, () => def.forward(inputs, attrs));
      if (recording) saved = (result.saved ?? []).map((t) => t.shareAs(t.shape, true));
      return [result.output, ...(result.extraOutputs ?? [])].map((t) =>
        inputs.includes(t) ? t.shareAs(t.shape) : t
      );
    }));
  const output = outputs[0]!;
  const extras = outputs.slice(1);
  if (recording && def.backward) {
    const backwardRule = def.backward;
    const backwardLabel = `${def.name}.backward`;
    const meta: InputMeta[] = inputs.map((t) => ({
      shape: t.shape,
      dtype: t.dtype,
      requiresGrad: t.requiresGrad,
    }));
    const ctx: BackwardContext<A> = { inputs: meta, saved, attrs };
    const node: TapeNode = {
      op: def.name,
      inputs: [...inputs],
      outputId: output.id,
      saved,
      extraOutputIds: extras.map((t) => t.id),
      outputShape: output.shape,
      backward: (dy, extraGrads) =>
        tidy(() => {
          // A rule may return dy or a saved tensor itself; give the tape its own reference.
          const grads = withOpLabel(
            backwardLabel,
            () => (backwardRule as MultiOutputOpDefinition<A>["backward"])(dy, ctx, extraGrads),
          ).map((g) =>
            g && (g === dy || saved.includes(g) || extraGrads.includes(g))
              ? g.shareAs(g.shape, true)
              : g
          );
          for (const g of grads) if (g) keep(g);
          return grads;
        }),
    };
    for (const t of outputs) {
      t.requiresGrad = true;
      t.node = node;
    }
    record(node);
  }
  return outputs;
}
