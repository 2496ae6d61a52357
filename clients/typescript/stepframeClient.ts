import * as grpc from '@grpc/grpc-js';

import {
  GenerateSequenceRequest,
  type GenerateSequenceResponse,
  type ListModelsResponse,
  type Summary,
  SequenceServiceClient,
  type StepImage,
} from './generated/stepframe/v1/sequence_service.js';

export type SequenceEvent = NonNullable<GenerateSequenceResponse['event']>;

export interface CallOptions {
  /** Aborting cancels the call; the server frees its capacity within one UNet call. */
  signal?: AbortSignal;
  /** Milliseconds from now, over every attempt; the server stops working at the deadline too. */
  timeoutMs?: number;
}

/** TLS: the server's CA; with `cert` and `key` as well, the client certificate of mTLS. PEM. */
export interface TlsOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

/** Retries of UNAVAILABLE and RESOURCE_EXHAUSTED before the first event arrives, with exponential backoff. */
export interface RetryOptions {
  /** Attempts in all, the first included (2 or more to retry at all). */
  maxAttempts: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ClientOptions {
  tls?: TlsOptions;
  /** Overrides `tls`: any grpc-js channel credentials. */
  credentials?: grpc.ChannelCredentials;
  /**
   * Spreads calls over every address the name resolves to (grpc-js' round_robin), as a headless
   * Kubernetes Service wants: `dns:///stepframe-headless.<ns>.svc.cluster.local:50051`.
   */
  roundRobin?: boolean;
  /** Off by default: a retried request starts again from its first image. */
  retry?: RetryOptions;
  channelOptions?: grpc.ChannelOptions;
}

/** A whole sequence: its images in order and the server's summary. */
export interface CollectedSequence {
  images: StepImage[];
  summary: Summary | undefined;
}

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED]);

/** The stepframe client: GenerateSequence as an async iterator of events, ListModels, and a collect helper. */
export class StepframeClient {
  readonly raw: SequenceServiceClient;
  private readonly retry: RetryOptions | undefined;

  /** `options` may also be channel credentials, with channel options third (the earlier signature). */
  constructor(address: string, options: ClientOptions | grpc.ChannelCredentials = {}, channelOptions: grpc.ChannelOptions = {}) {
    const settings: ClientOptions = options instanceof grpc.ChannelCredentials ? { credentials: options, channelOptions } : { ...options, channelOptions: { ...options.channelOptions, ...channelOptions } };
    const credentials = settings.credentials ?? credentialsFor(settings.tls);
    const balancing = settings.roundRobin ? { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {};
    this.raw = new SequenceServiceClient(address, credentials, { 'grpc.max_receive_message_length': 64 * 1024 * 1024, ...balancing, ...settings.channelOptions });
    this.retry = settings.retry;
  }

  /** Events in order: progress (when asked), one image per step, then the summary. Errors reject the iteration with a grpc ServiceError. */
  async *generate(request: Partial<GenerateSequenceRequest>, options: CallOptions = {}): AsyncGenerator<SequenceEvent> {
    const full = GenerateSequenceRequest.fromPartial(request);
    const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : undefined;
    const attempts = Math.max(1, this.retry?.maxAttempts ?? 1);
    for (let attempt = 1; ; attempt++) {
      let received = false;
      try {
        for await (const event of this.attempt(full, deadline, options.signal)) {
          received = true;
          yield event;
        }
        return;
      } catch (error) {
        const code = (error as grpc.ServiceError).code;
        // Only before the first event: a retry later would stream images the caller already has.
        if (received || attempt >= attempts || !RETRYABLE.has(code) || options.signal?.aborted) throw error;
        const backoff = Math.min(this.retry!.maxBackoffMs ?? 5000, (this.retry!.initialBackoffMs ?? 200) * 2 ** (attempt - 1));
        const wait = backoff * (0.5 + Math.random() / 2);
        if (deadline !== undefined && Date.now() + wait >= deadline) throw error;
        await sleep(wait, options.signal);
      }
    }
  }

  /** The whole sequence at once. */
  async collect(request: Partial<GenerateSequenceRequest>, options: CallOptions = {}): Promise<CollectedSequence> {
    const images: StepImage[] = [];
    let summary: Summary | undefined;
    for await (const event of this.generate(request, options)) {
      if (event.$case === 'image') images.push(event.value);
      if (event.$case === 'summary') summary = event.value;
    }
    return { images, summary };
  }

  listModels(options: CallOptions = {}): Promise<ListModelsResponse> {
    return new Promise((resolve, reject) => {
      const callOptions: Partial<grpc.CallOptions> = options.timeoutMs ? { deadline: Date.now() + options.timeoutMs } : {};
      this.raw.listModels({}, new grpc.Metadata(), callOptions, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  close(): void {
    this.raw.close();
  }

  private async *attempt(request: GenerateSequenceRequest, deadline: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<SequenceEvent> {
    const call = this.raw.generateSequence(request, new grpc.Metadata(), deadline ? { deadline } : {});
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const message of call as AsyncIterable<GenerateSequenceResponse>) {
        if (message.event) yield message.event;
      }
    } finally {
      signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
  }
}

function credentialsFor(tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const pem = (v: Buffer | string | undefined) => (v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v));
  return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });
}
