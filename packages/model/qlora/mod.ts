/**
 * QLoRA: NF4 4-bit frozen base weights (bitsandbytes layout and levels,
 * optional double quantisation of the scales), a matmul that dequantises on
 * the fly with its backward for the input, model quantisation, and the
 * memory arithmetic. See `packages/model/README_lora.md`.
 *
 * @module
 */

export {
  DOUBLE_QUANT_BLOCK,
  doubleDequantize,
  doubleQuantize,
  type DoubleQuantized,
  dynamicMap,
  dynamicMapCached,
  nearestCode,
} from "./double_quant.ts";
export {
  dequantizeNf4Weight,
  NF4_MAX_GAP,
  nf4BlockScales,
  type Nf4ComputeDtype,
  type Nf4Layout,
  nf4Layout,
  type Nf4Options,
  type Nf4Weight,
  quantizeNf4Weight,
  toWords,
} from "./nf4_weight.ts";
export { Nf4Linear, type Nf4Storage } from "./nf4_linear.ts";
export { quantizeModelNf4, type QuantizeModelOptions } from "./quantize_model.ts";
export { MISTRAL_7B_SHAPE, type QloraMemory, qloraMemory } from "./memory.ts";
