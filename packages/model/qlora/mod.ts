/**
 * QLoRA: NF4 4-bit frozen base weights (bitsandbytes layout and levels,
 * optional double quantisation of the scales), a matmul that dequantises on
 * the fly with its backward for the input, model quantisation, and the
 * memory arithmetic. See `packages/model/README_lora.md`.
 *
 * @module
 */

export * from "./double_quant.ts";
export * from "./nf4_weight.ts";
export * from "./nf4_linear.ts";
export * from "./quantize_model.ts";
export * from "./memory.ts";
