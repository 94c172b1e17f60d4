/**
 * LoRA adapters compatible with peft: configuration, the adapter
 * (`ProjectionDelta`), peft-format save/load, and merging into a base
 * checkpoint. See `packages/model/README_lora.md`.
 *
 * @module
 */

export * from "./config.ts";
export * from "./adapter.ts";
export * from "./io.ts";
export * from "./merge.ts";
export * from "./parity_adapter.ts";
