import * as grpc from '@grpc/grpc-js';

import {
  GenerateSequenceRequest,
  type GenerateSequenceResponse,
  type ListModelsResponse,
  SequenceServiceClient,
} from '../../src/generated/stepframe/v1/sequence_service.js';

export type SequenceEvent = NonNullable<GenerateSequenceResponse['event']>;

export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds from now; the server stops working at the deadline too. */
  timeoutMs?: number;
}

/** A thin wrapper over the generated client: GenerateSequence as an async iterator of events. */
export class StepframeClient {
  readonly raw: SequenceServiceClient;

  constructor(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}) {
    this.raw = new SequenceServiceClient(address, credentials, { 'grpc.max_receive_message_length': 64 * 1024 * 1024, ...options });
  }

  /** Events in order: progress (when asked), one image per step, then the summary. Errors reject the iteration with a grpc ServiceError. */
  async *generate(request: Partial<GenerateSequenceRequest>, options: CallOptions = {}): AsyncGenerator<SequenceEvent> {
    const full = GenerateSequenceRequest.fromPartial(request);
    const callOptions: Partial<grpc.CallOptions> = options.timeoutMs ? { deadline: Date.now() + options.timeoutMs } : {};
    const call = this.raw.generateSequence(full, new grpc.Metadata(), callOptions);
    const cancel = () => call.cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const message of call as AsyncIterable<GenerateSequenceResponse>) {
        if (message.event) yield message.event;
      }
    } finally {
      options.signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
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
}
