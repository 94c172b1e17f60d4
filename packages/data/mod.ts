/**
 * @irforge/data: datasets, collators and sequence packing over real IR
 * formats. Pure TypeScript; needs no GPU.
 *
 * @module
 */

export * from "./input_error.ts";
export * from "./shared_data.ts";
export * from "./trec.ts";
export * from "./lines.ts";
export * from "./jsonl.ts";
export * from "./fields.ts";
export * from "./json_records.ts";
export * from "./beir.ts";
export * from "./classic.ts";
export * from "./candidates.ts";
export * from "./hotpotqa.ts";
export * from "./blockrank_jsonl.ts";
