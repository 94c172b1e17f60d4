import assert from "node:assert/strict";
import { backward, noGrad, parameter, sum, Tensor } from "@irforge/tensor";
import { assertClose, gpuTest } from "@irforge/tensor/testing";
import { Rng } from "../rng.ts";
import { LAYER_NORM_EPS, projectionMlp } from "./projection_mlp.ts";

/** float64 reference of Linear → LayerNorm → GELU(erf) → Linear → LayerNorm for one row. */
function referenceRow(x: number[], p: Record<string, number[]>, hidden: number, out: number) {
  const linear = (v: number[], w: number[], b: number[], rows: number) =>
    Array.from(
      { length: rows },
      (_, r) => b[r]! + v.reduce((s, vi, i) => s + vi * w[r * v.length + i]!, 0),
    );
  const norm = (v: number[], g: number[], b: number[]) => {
    const m = v.reduce((s, a) => s + a, 0) / v.length;
    const variance = v.reduce((s, a) => s + (a - m) ** 2, 0) / v.length;
    return v.map((a, i) => ((a - m) / Math.sqrt(variance + LAYER_NORM_EPS)) * g[i]! + b[i]!);
  };
  // erf by its Taylor series (|x| small here), float64.
  const erf = (z: number) => {
    let term = z, total = z;
    for (let n = 1; n < 60; n++) {
      term *= -z * z / n;
      total += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * total;
  };
  const h = norm(
    linear(x, p["layer1.weight"]!, p["layer1.bias"]!, hidden),
    p["norm1.weight"]!,
    p["norm1.bias"]!,
  );
  const g = h.map((a) => 0.5 * a * (1 + erf(a / Math.SQRT2)));
  return norm(
    linear(g, p["layer2.weight"]!, p["layer2.bias"]!, out),
    p["norm2.weight"]!,
    p["norm2.bias"]!,
  );
}

gpuTest(
  "projectionMlp: forward equals a float64 reference; names and init as PyTorch",
  async () => {
    const input = 6, hidden = 5, out = 4, rows = 3;
    const mlp = projectionMlp(input, hidden, out, Rng.seeded(3));
    try {
      assert.deepEqual([...mlp.parameters.keys()], [
        "projection.layer1.weight",
        "projection.layer1.bias",
        "projection.norm1.weight",
        "projection.norm1.bias",
        "projection.layer2.weight",
        "projection.layer2.bias",
        "projection.norm2.weight",
        "projection.norm2.bias",
      ]);
      const values: Record<string, number[]> = {};
      for (const [name, t] of mlp.parameters) {
        values[name.slice("projection.".length)] = [...await t.toArray()];
      }
      // nn.Linear's init: |w|, |b| ≤ 1/√fan_in; LayerNorm weight 1, bias 0.
      assert.ok(values["layer1.weight"]!.every((w) => Math.abs(w) <= 1 / Math.sqrt(input)));
      assert.ok(values["layer2.bias"]!.every((w) => Math.abs(w) <= 1 / Math.sqrt(hidden)));
      assert.ok(values["norm1.weight"]!.every((w) => w === 1));
      // Non-trivial norm parameters so the reference checks their use.
      values["norm2.weight"] = [0.5, 2, -1, 1.5];
      values["norm2.bias"] = [0.1, -0.2, 0.3, 0];
      for (const name of ["norm2.weight", "norm2.bias"]) {
        mlp.parameters.get(`projection.${name}`)!.dispose();
        mlp.parameters.set(
          `projection.${name}`,
          parameter(Float32Array.from(values[name]!), [out]),
        );
      }
      const rng = Rng.seeded(9);
      const x = Array.from({ length: rows * input }, () => rng.normal(0, 1));
      const xs = Tensor.fromArray(Float32Array.from(x), [rows, input]);
      const y = noGrad(() => mlp.forward(xs));
      const expected = Array.from(
        { length: rows },
        (_, r) => referenceRow(x.slice(r * input, (r + 1) * input), values, hidden, out),
      ).flat();
      assertClose(await y.toArray(), expected, 1e-5, "projection output");
      y.dispose();
      // Every parameter receives a gradient.
      const loss = sum(mlp.forward(xs));
      backward(loss);
      for (const [name, p] of mlp.parameters) {
        assert.ok(p.grad, `${name} has a gradient`);
      }
      xs.dispose();
    } finally {
      mlp.dispose();
    }
  },
);
