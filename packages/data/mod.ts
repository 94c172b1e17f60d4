/**
 * @irforge/data: datasets, collators and sequence packing over real IR
 * formats. Pure TypeScript; needs no GPU.
 *
 * @module
 */

export * from "./input_error.ts";
export * from "./shared_data.ts";
export * from "./trec.ts";
