/**
 * @irforge/model: Mistral/Llama causal LMs on WebGPU from Hugging Face
 * checkpoints — config, safetensors, tokenizers, the model, generation,
 * parity with transformers.
 *
 * @module
 */

export {
  ConfigError,
  configToJson,
  loadModelConfig,
  type ModelConfig,
  type ModelType,
  parseModelConfig,
  saveModelConfig,
} from "./config.ts";
export type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer/tokenizer.ts";
export { loadTokenizer } from "./tokenizer/load.ts";
export {
  CausalLM,
  expectedParameterNames,
  type ForwardOptions,
  type ForwardResult,
  type LayerCache,
  parameterShape,
  type Projection,
  type ProjectionDelta,
  projectionPath,
  PROJECTIONS,
  type QuantizedLinear,
  type ResidualStream,
} from "./causal_lm.ts";
export { F16WeightCache } from "./f16_weights.ts";
export {
  causalInputs,
  disposeInputs,
  type ModelInputs,
  type TokenBatch,
  uploadInputs,
} from "./model_inputs.ts";
export {
  causalLMFromArrays,
  isModelDirectory,
  loadCausalLM,
  type LoadOptions,
  saveCausalLM,
} from "./load.ts";
export { PARITY_TOLERANCE, type ParityReport, runParity } from "./parity.ts";
export { generate, type GenerateOptions } from "./generate.ts";
export {
  type LoraConfig,
  loraConfig,
  loraConfigFromTrainerConfig,
  loraScaling,
  type TrainerLoraKeys,
} from "./lora/config.ts";
export {
  LoraAdapter,
  loraDropoutSeed,
  type LoraInitOptions,
  type LoraModule,
  type LoraModuleArrays,
} from "./lora/adapter.ts";
export {
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  loadLoraAdapter,
  type LoraAdapterArrays,
  readLoraAdapter,
  saveLoraAdapter,
} from "./lora/io.ts";
export { mergeLoraCheckpoint, type MergeOptions, type MergeReport } from "./lora/merge.ts";
export { doubleQuantize, type DoubleQuantized } from "./qlora/double_quant.ts";
export type { Nf4ComputeDtype, Nf4Options, Nf4Weight } from "./qlora/nf4_weight.ts";
export { Nf4Linear, type Nf4Storage } from "./qlora/nf4_linear.ts";
export { quantizeModelNf4, type QuantizeModelOptions } from "./qlora/quantize_model.ts";
export { MISTRAL_7B_SHAPE, type QloraMemory, qloraMemory } from "./qlora/memory.ts";
export { poolHidden, POOLING_MODES, type PoolingBatch, type PoolingMode } from "./pooling.ts";
export { forwardWithCheckpointing } from "./checkpointing.ts";
