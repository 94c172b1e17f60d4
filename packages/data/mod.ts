/**
 * @irforge/data: datasets, collators and sequence packing over real IR
 * formats. Pure TypeScript; needs no GPU.
 *
 * @module
 */

export { formatLocation, InputError, type InputLocation, SkipLog } from "./input_error.ts";
export { hasShared, sharedPath, sharedPathOrSkip, sharedRoot } from "./shared_data.ts";
export {
  formatQrels,
  formatRun,
  parseQrels,
  parseRun,
  type Qrels,
  type ReadOptions,
  readQrels,
  readRun,
  type Run,
  type RunEntry,
} from "./trec.ts";
export { type NumberedLine, readLines, splitLines } from "./lines.ts";
export { type JsonlOptions, type JsonlRecord, readJsonl, writeJsonl } from "./jsonl.ts";
export {
  asArray,
  asObject,
  describe,
  fieldLocation,
  numberField,
  type RecordLocation,
  stringField,
  type StringFieldOptions,
} from "./fields.ts";
export { type LocatedRecord, readJsonRecords, recordWhere } from "./json_records.ts";
export {
  type BeirCollection,
  type BeirCounts,
  type BeirQrelsOptions,
  type BeirReadOptions,
  type Corpus,
  type Document,
  type Queries,
  readBeir,
  readBeirCorpus,
  readBeirQrels,
  readBeirQueries,
  writeBeir,
} from "./beir.ts";
export {
  type ClassicCollection,
  type ClassicFiles,
  type ClassicQrels,
  type ClassicQrelsOptions,
  emptyDocuments,
  normalizeId,
  parseBinaryQrels,
  parseCranfieldQrels,
  parseSmart,
  parseTrecDocuments,
  parseTrecTopics,
  readCranfield,
  readNpl,
  readSmart,
  SMART_MARKERS,
  smartCorpus,
  type SmartCorpusFields,
  smartQueries,
  type SmartQueriesOptions,
  type SmartRecord,
} from "./classic.ts";
export {
  type Candidate,
  type CandidateList,
  parseCandidateList,
  readCandidates,
} from "./candidates.ts";
export {
  type HotpotExample,
  type HotpotParagraph,
  parseHotpotExample,
  readHotpotQa,
  type SupportingFact,
  supportingParagraphs,
} from "./hotpotqa.ts";
export {
  parseRankingExample,
  type RankingExample,
  readRankingExamples,
} from "./blockrank_jsonl.ts";
export { CharTokenizer, HashWordTokenizer, type TextTokenizer } from "./tokenizer.ts";
export {
  type Random,
  randomInt,
  sampleWithoutReplacement,
  seededRandom,
  shuffleInPlace,
} from "./random.ts";
export {
  attentionAllowed,
  collate,
  type CollatedBatch,
  type EncodeOptions,
  encodeText,
  IGNORE_INDEX,
  type PadOptions,
  roundUp,
  TokenKind,
  type TokenSequence,
  withDefaults,
} from "./sequence.ts";
export {
  type PackedRow,
  type PackingPlan,
  type PackingReport,
  packingReport,
  type PackingStrategy,
  type PackOptions,
  packSequences,
  paddingReport,
  planPacking,
} from "./packing.ts";
export {
  BlockRankDataset,
  type BlockRankItem,
  blockRankMistralPrompt,
  type BlockRankOptions,
  type BlockRankPrompt,
  layoutBlockRank,
  rankingExamplesFromCandidates,
  sampleBlockRankDocuments,
} from "./blockrank.ts";
export { type TroveNamePairs, troveSpelling } from "./trove_names.ts";
export {
  type MaterializedQrels,
  materializeQrels,
  type QrelSourceConfig,
  type QrelSourceInput,
  qrelSourceOptions,
  type QrelSourceTroveNames,
  runAsQrels,
  type ScoredDocument,
  type ScoreTransform,
} from "./qrel_source.ts";
export {
  BinaryDataset,
  type BinaryDatasetInput,
  type BinaryDatasetOptions,
  binaryDatasetOptions,
  type BinaryItem,
  type RunNegatives,
} from "./binary_dataset.ts";
export {
  candidateGroups,
  type GradedItem,
  MultiLevelDataset,
  type MultiLevelInput,
  type MultiLevelOptions,
  multiLevelOptions,
  type MultiLevelTroveNames,
} from "./multilevel_dataset.ts";
export {
  collateRetrieval,
  passageText,
  type RetrievalBatch,
  type RetrievalCollatorInput,
  type RetrievalCollatorOptions,
  retrievalCollatorOptions,
} from "./retrieval_collator.ts";
export {
  type ChatMessage,
  type ChatOptions,
  type ChatTemplate,
  mistralChatTemplate,
  tokenizeChat,
} from "./chat.ts";
export { type HotpotSftOptions, hotpotToSft, SftDataset, type SftRecord } from "./sft.ts";
export {
  conversationsToSft,
  isConversationsRecord,
  isQaExpertRecord,
  QA_EXPERT_SYSTEM,
  qaExpertToSft,
  retrieveCall,
} from "./sft_formats.ts";
export {
  identifierOffset,
  identifierTokenIds,
  type ListwiseExample,
  listwiseExamples,
  type ListwiseOptions,
  listwisePrompt,
  type ListwiseTokens,
  rankLlmSystemMessage,
  slidingWindows,
  tokenizeListwise,
} from "./listwise.ts";
export {
  type DistillItem,
  EmbeddingDistillDataset,
  type EmbeddingDistillOptions,
  type Triplet,
  TripletDataset,
} from "./distill.ts";
export {
  checkOutput,
  type CheckOutputOptions,
  type NamedPath,
  OutputError,
  writeDirectoryAtomic,
  writeFileAtomic,
} from "./safe_output.ts";
