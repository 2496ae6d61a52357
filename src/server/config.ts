import { parseArgs } from 'node:util';

import { quoteInput } from '../pipeline/quoteInput.js';
import { type MemoryBudgetSetting, parseMemoryBudget } from '../pipeline/residency/memoryBudget.js';

/** Every setting of the server, parsed and checked once at start. Nothing else reads process.env. */
export interface Config {
  modelDir: string;
  defaultModel: string | undefined;
  host: string;
  port: number;
  /** Prometheus /metrics port; 0 turns the endpoint off. */
  metricsPort: number;
  metricsHost: string;
  /** OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); empty turns export off. */
  otlpEndpoint: string;
  maxBatch: number;
  maxQueueDelayMs: number;
  maxActiveSequences: number;
  maxQueuedSequences: number;
  maxSteps: number;
  maxStepChars: number;
  /** Encoded images a stream may hold unsent before generation pauses for the client. */
  maxBufferedImages: number;
  /** How long a paused stream may stay unread before it is ended. */
  maxStallS: number;
  intraOpThreads: number;
  interOpThreads: number;
  executionProviders: string[];
  /** Where model calls run: worker-thread executors, or the main thread (for comparison and debugging). */
  executionMode: 'workers' | 'main-thread';
  /** Worker-thread executors; 0 picks one per CUDA device when CUDA loads, else one per core. */
  executors: number;
  /** Weights all loaded bundles may hold; past it idle bundles are unloaded and load again on request. */
  memoryBudget: MemoryBudgetSetting;
  /** Most bundles loaded at once (0: no limit). */
  maxLoadedBundles: number;
  /** Sessions read weights in place, shared by the executors (auto: for external-data weights). */
  sharedWeights: 'auto' | 'on' | 'off';
  cudaDeviceIds: number[];
  /** Check each component's sha256 against its manifest at load. */
  verifyWeights: boolean;
  drainTimeoutS: number;
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  tlsCert: string;
  tlsKey: string;
  /** With a client CA the server requires client certificates (mTLS). */
  tlsClientCa: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

type Kind = 'string' | 'int' | 'number' | 'list' | 'intList' | 'bool' | 'enum' | 'memory';

interface Option {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  default: Config[keyof Config];
  help: string;
  min?: number;
  max?: number;
  values?: readonly string[];
}

/** The option table: flags, environment variables, defaults and help come from here alone. */
export const OPTIONS: readonly Option[] = [
  { key: 'modelDir', flag: 'model-dir', env: 'STEPFRAME_MODEL_DIR', kind: 'string', default: 'models', help: 'folder whose subfolders are model bundles' },
  { key: 'defaultModel', flag: 'default-model', env: 'STEPFRAME_DEFAULT_MODEL', kind: 'string', default: undefined, help: 'bundle used when a request names none (default: the one MODEL_DIR/default-model.json names, else the first by folder name)' },
  { key: 'host', flag: 'host', env: 'STEPFRAME_HOST', kind: 'string', default: '0.0.0.0', help: 'gRPC listen address' },
  { key: 'port', flag: 'port', env: 'STEPFRAME_PORT', kind: 'int', default: 50051, min: 0, max: 65535, help: 'gRPC port (0 picks a free one)' },
  { key: 'metricsPort', flag: 'metrics-port', env: 'STEPFRAME_METRICS_PORT', kind: 'int', default: 9464, min: 0, max: 65535, help: 'Prometheus /metrics port (0: off)' },
  { key: 'metricsHost', flag: 'metrics-host', env: 'STEPFRAME_METRICS_HOST', kind: 'string', default: '0.0.0.0', help: 'Prometheus /metrics listen address' },
  { key: 'otlpEndpoint', flag: 'otlp-endpoint', env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', kind: 'string', default: '', help: 'OTLP/HTTP traces endpoint (empty: no export)' },
  { key: 'maxBatch', flag: 'max-batch', env: 'STEPFRAME_MAX_BATCH', kind: 'int', default: 16, min: 3, max: 1024, help: 'most UNet rows per call (a sequence needs 2 or 3)' },
  { key: 'maxQueueDelayMs', flag: 'max-queue-delay-ms', env: 'STEPFRAME_MAX_QUEUE_DELAY_MS', kind: 'number', default: 2, min: 0, max: 1000, help: 'longest a partial batch waits for more rows' },
  { key: 'maxActiveSequences', flag: 'max-active-sequences', env: 'STEPFRAME_MAX_ACTIVE_SEQUENCES', kind: 'int', default: 8, min: 1, max: 4096, help: 'sequences generating at once' },
  { key: 'maxQueuedSequences', flag: 'max-queued-sequences', env: 'STEPFRAME_MAX_QUEUED_SEQUENCES', kind: 'int', default: 32, min: 0, max: 100000, help: 'sequences waiting for a slot before RESOURCE_EXHAUSTED' },
  { key: 'maxSteps', flag: 'max-steps', env: 'STEPFRAME_MAX_STEPS', kind: 'int', default: 16, min: 1, max: 1000, help: 'most steps (images) per request' },
  { key: 'maxStepChars', flag: 'max-step-chars', env: 'STEPFRAME_MAX_STEP_CHARS', kind: 'int', default: 500, min: 1, max: 100000, help: 'longest step text, in characters' },
  { key: 'maxBufferedImages', flag: 'max-buffered-images', env: 'STEPFRAME_MAX_BUFFERED_IMAGES', kind: 'int', default: 2, min: 1, max: 64, help: 'encoded images a stream may hold for a slow client' },
  { key: 'maxStallS', flag: 'max-stall-s', env: 'STEPFRAME_MAX_STALL_S', kind: 'number', default: 60, min: 0.1, max: 86400, help: 'a stream unread this long (images waiting) is ended with RESOURCE_EXHAUSTED' },
  { key: 'intraOpThreads', flag: 'intra-op-threads', env: 'STEPFRAME_INTRA_OP_THREADS', kind: 'int', default: 1, min: 0, max: 1024, help: 'ONNX Runtime threads per session (0: runtime default)' },
  { key: 'interOpThreads', flag: 'inter-op-threads', env: 'STEPFRAME_INTER_OP_THREADS', kind: 'int', default: 1, min: 0, max: 1024, help: 'ONNX Runtime inter-op threads per session' },
  { key: 'executionProviders', flag: 'execution-providers', env: 'STEPFRAME_EXECUTION_PROVIDERS', kind: 'list', default: ['cuda', 'cpu'], help: 'ONNX Runtime providers, tried in order' },
  { key: 'executionMode', flag: 'execution-mode', env: 'STEPFRAME_EXECUTION_MODE', kind: 'enum', default: 'workers', values: ['workers', 'main-thread'], help: 'where model calls run: worker-thread executors, or the main thread' },
  { key: 'executors', flag: 'executors', env: 'STEPFRAME_EXECUTORS', kind: 'int', default: 0, min: 0, max: 256, help: 'executor threads, each holding every model (0: by model size: one per CUDA device on CUDA; on CPU one per core, or one using every core when a UNet is 256 MiB or more)' },
  { key: 'memoryBudget', flag: 'memory-budget', env: 'STEPFRAME_MEMORY_BUDGET', kind: 'memory', default: { kind: 'unlimited' }, help: 'bytes of weights loaded bundles may hold (24GiB, 24G; auto: the machine\'s memory less max(25%, 2 GiB); none: everything stays loaded); the least recently used idle bundle is unloaded to make room' },
  { key: 'maxLoadedBundles', flag: 'max-loaded-bundles', env: 'STEPFRAME_MAX_LOADED_BUNDLES', kind: 'int', default: 0, min: 0, max: 10000, help: 'most bundles loaded at once (0: no limit); others load on their first request' },
  { key: 'sharedWeights', flag: 'shared-weights', env: 'STEPFRAME_SHARED_WEIGHTS', kind: 'enum', default: 'auto', values: ['auto', 'on', 'off'], help: 'sessions read weights in place from the memory-mapped external data, one copy for every executor (auto: where weights are external data; off: each session repacks its own copy)' },
  { key: 'cudaDeviceIds', flag: 'cuda-device-ids', env: 'STEPFRAME_CUDA_DEVICE_IDS', kind: 'intList', default: [0], help: 'CUDA devices, one executor each (passed to the provider as deviceId)' },
  { key: 'verifyWeights', flag: 'verify-weights', env: 'STEPFRAME_VERIFY_WEIGHTS', kind: 'bool', default: true, help: 'check each model file against the sha256 in stepframe.json at load (false: trusted storage)' },
  { key: 'drainTimeoutS', flag: 'drain-timeout-s', env: 'STEPFRAME_DRAIN_TIMEOUT_S', kind: 'number', default: 30, min: 0, max: 86400, help: 'on SIGTERM, how long in-flight work may finish' },
  { key: 'maxReceiveMessageBytes', flag: 'max-receive-message-bytes', env: 'STEPFRAME_MAX_RECEIVE_MESSAGE_BYTES', kind: 'int', default: 16 * 1024 * 1024, min: 1024, max: 2 ** 31 - 1, help: 'largest request (init images included)' },
  { key: 'maxSendMessageBytes', flag: 'max-send-message-bytes', env: 'STEPFRAME_MAX_SEND_MESSAGE_BYTES', kind: 'int', default: 64 * 1024 * 1024, min: 1024, max: 2 ** 31 - 1, help: 'largest response message' },
  { key: 'keepaliveTimeMs', flag: 'keepalive-time-ms', env: 'STEPFRAME_KEEPALIVE_TIME_MS', kind: 'int', default: 30000, min: 1000, max: 2 ** 31 - 1, help: 'HTTP/2 keepalive ping interval' },
  { key: 'keepaliveTimeoutMs', flag: 'keepalive-timeout-ms', env: 'STEPFRAME_KEEPALIVE_TIMEOUT_MS', kind: 'int', default: 10000, min: 100, max: 2 ** 31 - 1, help: 'keepalive ping timeout' },
  { key: 'tlsCert', flag: 'tls-cert', env: 'STEPFRAME_TLS_CERT', kind: 'string', default: '', help: 'PEM server certificate (with --tls-key: TLS)' },
  { key: 'tlsKey', flag: 'tls-key', env: 'STEPFRAME_TLS_KEY', kind: 'string', default: '', help: 'PEM server private key' },
  { key: 'tlsClientCa', flag: 'tls-client-ca', env: 'STEPFRAME_TLS_CLIENT_CA', kind: 'string', default: '', help: 'PEM CA for client certificates (mTLS)' },
  { key: 'logLevel', flag: 'log-level', env: 'STEPFRAME_LOG_LEVEL', kind: 'enum', default: 'info', values: ['debug', 'info', 'warn', 'error'], help: 'least severe log level written' },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function convert(option: Option, raw: string, source: string): Config[keyof Config] {
  const where = `${source} (${option.help})`;
  switch (option.kind) {
    case 'string':
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'intList': {
      const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      if (items.length === 0 || items.some((s) => !/^\d+$/.test(s))) throw new ConfigError(`${where}: must be a comma-separated list of non-negative integers, got ${quoteInput(raw)}`);
      return items.map(Number);
    }
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(`${where}: must be true or false, got ${quoteInput(raw)}`);
    case 'memory':
      try {
        return parseMemoryBudget(raw);
      } catch (error) {
        throw new ConfigError(`${where}: ${(error as Error).message}`);
      }
    case 'enum':
      if (!option.values!.includes(raw)) throw new ConfigError(`${where}: must be one of ${option.values!.join(', ')}, got ${quoteInput(raw)}`);
      return raw;
    default: {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value) || (option.kind === 'int' && !Number.isInteger(value))) {
        throw new ConfigError(`${where}: must be ${option.kind === 'int' ? 'an integer' : 'a number'}, got ${quoteInput(raw)}`);
      }
      if ((option.min !== undefined && value < option.min) || (option.max !== undefined && value > option.max)) {
        throw new ConfigError(`${where}: must be in [${option.min}, ${option.max}], got ${value}`);
      }
      return value;
    }
  }
}

export function helpText(): string {
  const lines = OPTIONS.map((o) => {
    const def = Array.isArray(o.default) ? o.default.join(',') : o.kind === 'memory' ? 'none' : o.default === undefined || o.default === '' ? '—' : String(o.default);
    return `  --${o.flag.padEnd(27)} ${o.help}\n  ${' '.repeat(29)} env ${o.env}, default ${def}`;
  });
  return `Usage: stepframe-server [options]\n\nFlags override environment variables, which override defaults.\n\n${lines.join('\n')}\n  --help                      print this text\n`;
}

/**
 * argv through node:util's parseArgs (every flag takes a value; the last one given wins), its errors
 * turned into ConfigErrors that name the flag.
 */
function parseFlags(argv: readonly string[]): Record<string, string> {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    });
    return values as Record<string, string>;
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const quoted = /'(-{0,2}[^' <]*)/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new ConfigError(`unknown flag ${quoted}; see --help`);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new ConfigError(`unexpected argument ${quoteInput(quoted)}; flags look like --port 50051`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new ConfigError(`${quoted} needs a value${message.includes('ambiguous') ? ` (to pass one that starts with a dash, write ${quoted}=VALUE)` : ''}`);
    throw error;
  }
}

/** Flags override the environment, which overrides defaults. Throws ConfigError naming the flag or variable. */
export function parseConfig(argv: readonly string[], env: Record<string, string | undefined>): Config {
  const config = Object.fromEntries(OPTIONS.map((o) => [o.key, o.default])) as unknown as Record<string, unknown>;
  for (const option of OPTIONS) {
    const raw = env[option.env];
    if (raw !== undefined && raw !== '') config[option.key] = convert(option, raw, option.env);
  }
  for (const [flag, raw] of Object.entries(parseFlags(argv))) {
    const option = OPTIONS.find((o) => o.flag === flag)!;
    config[option.key] = convert(option, raw, `--${flag}`);
  }
  const result = config as unknown as Config;
  if ((result.tlsCert === '') !== (result.tlsKey === '')) throw new ConfigError('--tls-cert and --tls-key must be given together');
  if (result.tlsClientCa && !result.tlsCert) throw new ConfigError('--tls-client-ca (mTLS) needs --tls-cert and --tls-key');
  if (result.executionProviders.length === 0) throw new ConfigError('--execution-providers must name at least one provider');
  return result;
}
