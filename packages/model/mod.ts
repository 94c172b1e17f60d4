/**
 * @irforge/model: Mistral/Llama causal LMs on WebGPU from Hugging Face
 * checkpoints — config, safetensors, tokenizers, the model, generation,
 * parity with transformers.
 *
 * @module
 */

export * from "./config.ts";
export * from "./safetensors/mod.ts";
export * from "./tokenizer/mod.ts";
export * from "./causal_lm.ts";
export * from "./f16_weights.ts";
export * from "./model_inputs.ts";
export * from "./load.ts";
export * from "./parity.ts";
export * from "./generate.ts";
export * from "./lora/mod.ts";
export * from "./qlora/mod.ts";
export * from "./pooling.ts";
export * from "./checkpointing.ts";
