import { randomUUID } from 'node:crypto';

import { type sendUnaryData, type ServerUnaryCall, status } from '@grpc/grpc-js';

import type { ListModelsRequest, ListModelsResponse } from '../generated/stepframe/v1/sequence_service.js';
import { toGrpcError } from './errorStatus.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { Telemetry } from './telemetry.js';

/** ListModels: every loaded bundle with its defaults and what it supports. */
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
