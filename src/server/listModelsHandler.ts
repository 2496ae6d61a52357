import { randomUUID } from 'node:crypto';

import { type sendUnaryData, type ServerUnaryCall, status } from '@grpc/grpc-js';

import { type ListModelsRequest, type ListModelsResponse, ModelState } from '../generated/stepframe/v1/sequence_service.js';
import type { BundleState } from '../pipeline/residency/bundleCatalog.js';
import { toGrpcError } from './errorStatus.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { Telemetry } from './telemetry.js';

const MODEL_STATES: Record<BundleState, ModelState> = {
  loaded: ModelState.MODEL_STATE_LOADED,
  loading: ModelState.MODEL_STATE_LOADING,
  not_loaded: ModelState.MODEL_STATE_NOT_LOADED,
};

/** ListModels: every bundle with its defaults and what it supports. */
export function listModelsHandler(lifecycle: Lifecycle, telemetry: Telemetry, log: Logger) {
  return (_call: ServerUnaryCall<ListModelsRequest, ListModelsResponse>, callback: sendUnaryData<ListModelsResponse>): void => {
    try {
      const engine = lifecycle.engine();
      const models = engine.models().map((m) => ({
        name: m.name,
        fuserKind: m.fuserKind,
        width: m.width,
        height: m.height,
        supportsImageGuidance: m.imageGuidance,
        defaults: {
          scheduler: m.defaults.scheduler,
          numInferenceSteps: m.defaults.numInferenceSteps,
          guidanceScale: m.defaults.guidanceScale,
          imageGuidanceScale: m.defaults.imageGuidanceScale,
        },
        schedulers: [...m.schedulers],
        executionProvider: m.provider,
        pooledImageOutput: m.pooledImageOutput,
        timestepInput: m.timestepInput,
        state: MODEL_STATES[m.state],
      }));
      telemetry.countRequest('ListModels', 'OK', 'OK');
      callback(null, { models, defaultModel: engine.defaultModel });
    } catch (error) {
      const requestId = randomUUID();
      const mapped = toGrpcError(error, requestId);
      telemetry.countRequest('ListModels', mapped.code, status[mapped.status]);
      // The message an internal failure returns sends the caller to the log: this is that line.
      if (mapped.internal) log.error('call failed', { requestId, method: 'ListModels', code: mapped.code, error });
      callback({ code: mapped.status, details: mapped.message });
    }
  };
}
