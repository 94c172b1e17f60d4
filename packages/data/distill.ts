/**
 * Embedding distillation data.
 *
 * Phase 1: texts paired with teacher embeddings. The safetensors reader
 * belongs to the model package; to stay GPU-free and independent, this
 * dataset takes the teacher matrix as a row-major `Float32Array` of
 * `texts.length × dim` supplied by the caller (e.g. read with
 * `@irforge/model`'s safetensors reader).
 *
 * Phase 2: (query, positive, hard negative) triplets drawn from a
 * {@link BinaryDataset} with group size 2.
 *
 * @module
 */

import type { Document } from "./beir.ts";
import { BinaryDataset, type BinaryDatasetOptions } from "./binary_dataset.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { encodeText } from "./sequence.ts";

/** A text, its tokens and its teacher embedding. */
export interface DistillItem {
  /** Source text. */
  text: string;
  /** Token ids (BOS/EOS per options). */
  inputIds: number[];
  /** Teacher embedding (a view into the caller's matrix). */
  target: Float32Array;
}

/** Options of {@link EmbeddingDistillDataset}. */
export interface EmbeddingDistillOptions {
  /** Max tokens per text. */
  maxLength: number;
  /** Append EOS (default true, for last-token pooling). */
  appendEos?: boolean;
  /** Prepend BOS (default true). */
  prependBos?: boolean;
}

/** Phase-1 dataset: texts and teacher embeddings. */
export class EmbeddingDistillDataset {
  /** Checks that `teacher` holds `texts.length × dim` finite values. */
  constructor(
    readonly texts: readonly string[],
    readonly teacher: Float32Array,
    readonly dim: number,
    readonly tokenizer: TextTokenizer,
    readonly options: EmbeddingDistillOptions,
  ) {
    if (!Number.isInteger(dim) || dim <= 0) {
      throw new RangeError(`dim must be a positive integer, got ${dim}`);
    }
    if (teacher.length !== texts.length * dim) {
      throw new RangeError(
        `teacher embeddings hold ${teacher.length} values, expected ${texts.length} texts × ${dim} = ${
          texts.length * dim
        }`,
      );
    }
    const bad = teacher.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new RangeError(
        `teacher embedding of text ${Math.floor(bad / dim)} has a non-finite value`,
      );
    }
  }

  /** Number of texts. */
  get length(): number {
    return this.texts.length;
  }

  /** Item `index`. */
  get(index: number): DistillItem {
    const text = this.texts[index];
    if (text === undefined) {
      throw new RangeError(`index ${index} outside 0..${this.texts.length - 1}`);
    }
    return {
      text,
      inputIds: encodeText(this.tokenizer, text, {
        maxLength: this.options.maxLength,
        appendEos: this.options.appendEos ?? true,
        prependBos: this.options.prependBos ?? true,
      }),
      target: this.teacher.subarray(index * this.dim, (index + 1) * this.dim),
    };
  }
}

/** A phase-2 triplet. */
export interface Triplet {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** A relevant document. */
  positive: Document;
  /** A hard negative. */
  negative: Document;
}

/** Phase-2 dataset: seeded triplets (one per query per epoch). */
export class TripletDataset {
  readonly #groups: BinaryDataset;

  /** Same sources as {@link BinaryDataset}; the group size is fixed at 2. */
  constructor(options: Omit<BinaryDatasetOptions, "groupSize">) {
    this.#groups = new BinaryDataset({ ...options, groupSize: 2 });
  }

  /** Number of queries. */
  get length(): number {
    return this.#groups.length;
  }

  /** Triplet `index` of `epoch`. */
  get(index: number, epoch = 0): Triplet {
    const item = this.#groups.get(index, epoch);
    return {
      qid: item.qid,
      query: item.query,
      positive: item.passages[0]!,
      negative: item.passages[1]!,
    };
  }
}
