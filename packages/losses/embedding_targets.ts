/**
 * Student/teacher pairs for embedding distillation: checks shapes and uploads
 * a host-side teacher.
 *
 * @module
 */

import { Tensor } from "@irforge/tensor";
import { hostArray, need, upload } from "./compose.ts";
import type { LossInputs } from "./types.ts";

/** The student tensor and the teacher as a tensor of the same shape. */
export function studentTeacher(inputs: LossInputs, loss: string): [Tensor, Tensor] {
  const student = need(inputs, "student", loss);
  const given = need(inputs, "teacher", loss);
  if (given instanceof Tensor) {
    if (given.shape.join() !== student.shape.join()) {
      throw new Error(`loss "${loss}": teacher ${given} does not match student ${student}`);
    }
    return [student, given];
  }
  return [student, upload(hostArray(given, student.size, "teacher", loss), student.shape)];
}
