import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';

import type { ListModelsRequest, ListModelsResponse } from '../generated/stepframe/v1/sequence_service.js';
import { toGrpcError } from './errorStatus.js';
import type { Lifecycle } from './lifecycle.js';
import type { Telemetry } from './telemetry.js';

export function listModelsHandler(lifecycle: Lifecycle, telemetry: Telemetry) {
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
      telemetry.countRequest('ListModels', 'OK');
      callback(null, { models, defaultModel: engine.defaultModel });
    } catch (error) {
      const mapped = toGrpcError(error, 'ListModels');
      telemetry.countRequest('ListModels', mapped.label);
      callback({ code: mapped.code, details: mapped.message });
    }
  };
}
