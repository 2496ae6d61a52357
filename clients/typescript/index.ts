/** @stepframe/client: the stepframe gRPC API as an installable package (ESM, with its generated types). */
export { type CallOptions, type ClientOptions, type CollectedSequence, type RetryOptions, type SequenceEvent, StepframeClient, type TlsOptions } from './stepframeClient.js';
export {
  GenerateSequenceRequest,
  ImageFormat,
  type ListModelsResponse,
  type ModelInfo,
  type Summary,
  type StepImage,
} from './generated/stepframe/v1/sequence_service.js';
