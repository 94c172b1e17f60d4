/**
 * LoRA adapters compatible with peft: configuration, the adapter
 * (`ProjectionDelta`), peft-format save/load, and merging into a base
 * checkpoint. See `packages/model/README_lora.md`.
 *
 * @module
 */

export {
  type LoraConfig,
  loraConfig,
  loraConfigFromTrainerConfig,
  loraScaling,
  parsePeftConfig,
  PEFT_VERSION,
  peftConfigJson,
  resolveTargetModules,
  type TrainerLoraKeys,
} from "./config.ts";
export {
  LoraAdapter,
  loraDropoutSeed,
  type LoraInitOptions,
  type LoraModule,
  type LoraModuleArrays,
  loraTargetPaths,
  peftParameterName,
  peftWeightKey,
  projectionShape,
} from "./adapter.ts";
export {
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  loadLoraAdapter,
  type LoraAdapterArrays,
  readLoraAdapter,
  saveLoraAdapter,
} from "./io.ts";
export {
  ADAPTER_SIDE_WEIGHTS,
  mergeLoraCheckpoint,
  mergeLoraWeight,
  type MergeOptions,
  type MergeReport,
} from "./merge.ts";
export { attachAdapterForParity } from "./parity_adapter.ts";
