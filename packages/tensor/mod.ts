/**
 * `@irforge/tensor`: WebGPU tensors with tape autograd, the ops the
 * retrieval/ranking models need, and AdamW. See README.md for layouts,
 * ownership rules and the tolerance policy.
 *
 * @module
 */

export {
  type ArrayFor,
  bytesPerElement,
  type DType,
  type FloatDType,
  isFloat,
  wgslType,
} from "./dtype.ts";
export {
  type AdapterDescription,
  currentDevice,
  DAWN_TOGGLES,
  describeDevice,
  describeMatrixConfig,
  describeNoGpu,
  type Device,
  type DeviceFacts,
  deviceFacts,
  getDevice,
  loadDawn,
  NoGpuError,
  providerChoice,
  type SubgroupMatrixConfig,
  type WebGpuProvider,
  type WebGpuProviderChoice,
} from "./device.ts";
export type { MemoryStats } from "./pool.ts";
export { bucketSize, TensorTooLargeError } from "./pool.ts";
export {
  type AnyKernel,
  type Binding,
  type BindingDecl,
  type BindingValues,
  defineKernel,
  type Kernel,
  type KernelDefinition,
  kernelSource,
  registeredKernels,
  type UniformDecl,
  type UniformType,
  type UniformValues,
} from "./kernel.ts";
export {
  checkGpuErrors,
  emptyCache,
  GpuOpError,
  launch,
  maxBindingBytes,
  memoryStats,
  resetPeakMemory,
  type RuntimeCounters,
  runtimeCounters,
  setBindingLimitForTesting,
  setGpuDebug,
  syncGpu,
} from "./runtime.ts";
export { type Disposable, keep, tidy, tidyAsync, track } from "./scope.ts";
export {
  full,
  type Nf4Meta,
  ones,
  sizeOf,
  Tensor,
  tensor,
  type TensorData,
  zeros,
} from "./tensor.ts";
export {
  rand,
  randArray,
  randn,
  randnArray,
  type RandomOptions,
  Rng,
  xoshiro128ssNext,
} from "./random.ts";
export type { BackwardContext, InputMeta, TapeNode } from "./autograd_types.ts";
export {
  backward,
  backwardFrom,
  isGradEnabled,
  noGrad,
  parameter,
  releaseTape,
  tapeLength,
  variable,
  zeroGrad,
} from "./autograd.ts";
export {
  defineMultiOutputOp,
  defineOp,
  type DifferentiableOp,
  type ForwardResult,
  type MultiOutputOpDefinition,
  type NonDifferentiableOp,
  type Op,
  type OpBase,
  type OpDefinition,
  registeredOps,
} from "./registry.ts";
export {
  add,
  addScalar,
  cast,
  div,
  exp,
  gelu,
  geluErf,
  log,
  mapRaw,
  mul,
  neg,
  powScalar,
  relu,
  rsqrt,
  scale,
  sigmoid,
  silu,
  sqrt,
  sub,
  tanh,
} from "./ops/elementwise.ts";
export {
  type Activation,
  linear,
  type LinearOptions,
  matmul,
  type MatmulOptions,
  type MatmulTiles,
  setMatmulTiles,
  setMatmulVariant,
  traceMatmulKernels,
} from "./ops/matmul.ts";
export {
  subgroupMatrixAvailable,
  subgroupMatrixMatmul,
  type SubgroupMatrixMatmulOptions,
  subgroupMatrixUnavailableReason,
} from "./ops/matmul_subgroup_matrix.ts";
export { max, mean, sum, sumToShape } from "./ops/reduce.ts";
export { concat, expand, permute, reshape, slice, transpose } from "./ops/shape.ts";
export { logSoftmax, softmax } from "./ops/softmax.ts";
export { addRmsNorm, rmsNorm } from "./ops/rmsnorm.ts";
export { rope, ropeQK, ropeTable, ropeTableData } from "./ops/rope.ts";
export { swiglu } from "./ops/swiglu.ts";
export { castF16Into } from "./ops/cast_many.ts";
export { lmHeadLoss, type LmHeadLossOptions } from "./ops/lm_head_loss.ts";
export { embedding, indexSelect } from "./ops/gather.ts";
export { crossEntropy, type CrossEntropyOptions, type Reduction } from "./ops/cross_entropy.ts";
export { attention, type AttentionDtype, attentionScoresForRows } from "./ops/attention.ts";
export {
  AttentionMask,
  BlockKind,
  blockRankMask,
  causalMask,
  maskFromArrays,
  type MaskMetadata,
  packedMask,
  PAD_SEGMENT,
} from "./attention/mod.ts";
export { dropout, dropoutMask } from "./ops/dropout.ts";
export { maskedFill, where } from "./ops/mask.ts";
export { cosineSimilarity, l2Normalize } from "./ops/l2norm.ts";
export {
  dequantizeNf4,
  dequantizeNf4Cpu,
  NF4_LEVELS,
  type Nf4Data,
  nf4Tensor,
  quantizeNf4,
  quantizeNf4Cpu,
} from "./nf4.ts";
export { AdamW, type AdamWOptions, type AdamWState, type AdamWStepOptions } from "./optim/adamw.ts";
export {
  clipGradNorm,
  type GradNormOptions,
  type GradNormStats,
  gradNormStats,
} from "./optim/clip.ts";
export { type TapeStats, tapeStats } from "./autograd.ts";
export {
  formatOpProfile,
  NoTimestampsError,
  type OpProfile,
  type OpProfileRow,
  type OpProfileSession,
  profileOps,
  type ProfileOptions,
  startOpProfile,
  summarizeSpans,
} from "./profile.ts";
export { currentOpLabel, withOpLabel } from "./op_label.ts";
export { markUpdated, storageVersion } from "./storage_version.ts";
export {
  checkpoint,
  checkpointMany,
  type CheckpointOptions,
  isReplayableState,
  type ReplayableState,
} from "./checkpoint.ts";
export {
  loadMatmulTuning,
  type MatmulTuningTable,
  type MatmulVariant,
  tuneMatmul,
  useMatmulTuning,
} from "./ops/matmul_tuning.ts";
