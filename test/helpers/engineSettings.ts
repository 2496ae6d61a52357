import type { SessionSettings } from '../../src/pipeline/bundle/onnxModel.js';

/** CPU sessions with one thread each, quiet logs: what every pipeline test loads models with. */
export const TEST_SESSION_SETTINGS: SessionSettings = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  log: () => undefined,
};
