/**
 * Gradient checking against float64 finite differences of a CPU reference.
 *
 * @module
 */

/**
 * Central finite-difference gradient of the scalar `loss(inputs)` with
 * respect to every element of `inputs[which]` (step `h`, float64).
 */
export function numericGrad(
  loss: (inputs: Float64Array[]) => number,
  inputs: Float64Array[],
  which: number,
  h = 1e-6,
): Float64Array {
  const x = inputs[which]!;
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + h;
    const up = loss(inputs);
    x[i] = keep - h;
    const down = loss(inputs);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** Σ f(inputs)ᵢ · wᵢ: turns a vector-valued reference into a scalar loss. */
export function weightedSum(
  f: (inputs: Float64Array[]) => ArrayLike<number>,
  weights: ArrayLike<number>,
): (inputs: Float64Array[]) => number {
  return (inputs) => {
    const y = f(inputs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i]! * weights[i]!;
    return s;
  };
}

/** Rounds values to f32, as the GPU sees them (references then match the data exactly). */
export function toF64(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values as ArrayLike<number>));
}
