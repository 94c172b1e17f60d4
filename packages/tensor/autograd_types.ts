/**
 * Types shared by the tape and the op registry.
 *
 * @module
 */

import type { DType } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";

/** Shape and dtype of an op input, as the backward rule sees it. */
export interface InputMeta {
  /** The input's shape. */
  readonly shape: readonly number[];
  /** The input's dtype. */
  readonly dtype: DType;
  /** Whether a gradient is wanted for it. */
  readonly requiresGrad: boolean;
}

/** What a backward rule receives besides the output gradient. */
export interface BackwardContext<A> {
  /** Metadata of the inputs, in order. */
  readonly inputs: readonly InputMeta[];
  /** Tensors the forward saved (valid until the tape is released). */
  readonly saved: readonly Tensor[];
  /** The op's attributes. */
  readonly attrs: A;
}

/** One recorded op application (internal). */
export interface TapeNode {
  /** Op name. */
  readonly op: string;
  /** The input tensors (their ids route gradients; leaves receive `.grad`). */
  readonly inputs: readonly Tensor[];
  /** Id of the output tensor. */
  readonly outputId: number;
  /** Shared references to saved tensors, released with the tape. */
  readonly saved: Tensor[];
  /** Computes input gradients from the output gradient (and the extra outputs' gradients). */
  readonly backward: (dy: Tensor, extraGrads: (Tensor | null)[]) => (Tensor | null)[];
  /**
   * Ids of further outputs of a multi-output op (see `defineMultiOutputOp`);
   * their gradients reach `backward` as `extraGrads`, in order.
   */
  readonly extraOutputIds?: readonly number[];
  /** Shape of the main output (a zero gradient stands in when only extra outputs got one). */
  readonly outputShape?: readonly number[];
}
