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
export * from "./tokenizer.ts";
export * from "./random.ts";
export * from "./sequence.ts";
export * from "./packing.ts";
export * from "./blockrank.ts";
export * from "./trove_names.ts";
export * from "./qrel_source.ts";
export * from "./binary_dataset.ts";
export * from "./multilevel_dataset.ts";
export * from "./retrieval_collator.ts";
export * from "./chat.ts";
export * from "./sft.ts";
export * from "./sft_formats.ts";
export * from "./listwise.ts";
export * from "./distill.ts";
export * from "./safe_output.ts";
