import type { ExecutionSettings } from '../../src/pipeline/execution/executionSettings.js';

/** CPU executors with one thread each, quiet logs: what every pipeline test loads models with. */
export const TEST_SESSION_SETTINGS: ExecutionSettings = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  mode: 'workers',
  executors: 2,
  cudaDeviceIds: [],
  log: () => undefined,
};
