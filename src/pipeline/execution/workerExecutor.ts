import { Worker } from 'node:worker_threads';

import { ExecutorLostError } from '../errors.js';
import { ModelLoadError } from './modelLoadError.js';
import type { Executor } from './executor.js';
import { type ExecutorCommand, type ExecutorReply, type LoadedModelInfo, type ProviderChoice, type SessionTuning, type WireFeed, type WireOutputs, transferList } from './protocol.js';

const WORKER_URL = new URL('./executorWorker.js', import.meta.url);
/** How long shutdown waits for a command in progress before ending the thread regardless. */
const DISPOSE_GRACE_MS = 10_000;

type Pending = { resolve: (reply: ExecutorReply & { ok: true }) => void; reject: (error: Error) => void };


/** An executor in its own worker thread. The thread is unref'd while idle, so it never keeps a finished process alive. */
export class WorkerExecutor implements Executor {
  readonly lost: Promise<string>;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextCallId = 1;
  private gone: string | null = null;
  private disposing = false;
  private drained: (() => void) | null = null;

  constructor(
    readonly index: number,
    readonly deviceId: number | undefined,
  ) {
    // The worker's own stdout/stderr are the process's; resource limits would not bound ONNX
    // Runtime's native memory, so none are set.
    this.worker = new Worker(WORKER_URL);
    this.worker.unref();
    let markLost!: (reason: string) => void;
    this.lost = new Promise((resolve) => (markLost = resolve));
    this.worker.on('message', (reply: ExecutorReply) => this.settle(reply));
    this.worker.on('error', (error) => this.fail(`executor ${index} crashed: ${error.message.split('\n')[0]}`, markLost));
    this.worker.on('exit', (code) => this.fail(this.disposing ? `executor ${index} was shut down` : `executor ${index} exited with code ${code}`, markLost));
  }

  async load(modelId: number, file: string, providers: readonly ProviderChoice[], tuning: SessionTuning): Promise<LoadedModelInfo> {
    const reply = await this.send({ op: 'load', callId: 0, modelId, file, providers: [...providers], tuning }, [], `loading ${file}`);
    return reply.info!;
  }

  async release(modelId: number): Promise<void> {
    await this.send({ op: 'release', callId: 0, modelId }, [], `releasing model ${modelId}`);
  }

  async run(modelId: number, feeds: Record<string, WireFeed>, outputNames: readonly string[]): Promise<WireOutputs> {
    const reply = await this.send({ op: 'run', callId: 0, modelId, feeds, outputNames }, transferList(Object.values(feeds)), `a call to model ${modelId}`);
    return reply.outputs!;
  }

  async exitOnNextRun(): Promise<void> {
    await this.send({ op: 'exit-on-next-run', callId: 0 }, [], 'arming the fault hook');
  }

  /**
   * Ends the thread once its current command has answered (or after DISPOSE_GRACE_MS): terminating
   * a worker inside ONNX Runtime's session creation aborts the whole process.
   */
  async dispose(): Promise<void> {
    if (this.gone) return;
    this.disposing = true;
    if (this.pending.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, DISPOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
    }
    await this.worker.terminate();
  }

  private send(command: ExecutorCommand, transfer: ArrayBuffer[], what: string): Promise<ExecutorReply & { ok: true }> {
    if (this.gone) return Promise.reject(new ExecutorLostError(`${this.gone}; ${what} did not run`));
    const callId = this.nextCallId++;
    return new Promise((resolve, reject) => {
      this.pending.set(callId, { resolve, reject });
      // Referenced only while it owes an answer, so an awaited call keeps the process alive.
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...command, callId }, transfer);
    });
  }

  private settle(reply: ExecutorReply): void {
    const pending = this.pending.get(reply.callId);
    if (!pending) return;
    this.pending.delete(reply.callId);
    if (this.pending.size === 0) {
      this.worker.unref();
      this.drained?.();
    }
    if (reply.ok) pending.resolve(reply);
    // The worker's ModelLoadError arrives as plain data; rebuilt here, callers match it as they do in main-thread mode.
    else pending.reject(reply.errorName === 'ModelLoadError' ? new ModelLoadError(reply.message) : new Error(reply.message));
  }

  private fail(reason: string, markLost: (reason: string) => void): void {
    if (this.gone) return;
    this.gone = reason;
    markLost(reason);
    for (const pending of this.pending.values()) pending.reject(new ExecutorLostError(`the model executor running this call was lost (${reason}); it is being replaced, retry the request`));
    this.pending.clear();
  }
}
