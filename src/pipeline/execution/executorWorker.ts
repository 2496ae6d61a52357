/**
 * The body of one executor thread: it owns its ONNX Runtime sessions and answers the main thread's
 * commands one at a time. A model call blocks only this thread, never the server's event loop.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';

import { type ExecutorCommand, type ExecutorReply, transferList } from './protocol.js';
import { SessionHost } from './sessionHost.js';

const port = parentPort;
if (!port) throw new Error('executorWorker.js runs as a worker thread, started by WorkerExecutor');

// On Linux a nice value is per thread, and with one intra-op thread ONNX Runtime computes on this
// one: when every core is busy with model calls, the main thread (gRPC, batching, scheduler math)
// still gets a core the moment it has work, so the event loop stays responsive under full load.
const EXECUTOR_NICE = 5;
try {
  setPriority(0, EXECUTOR_NICE);
} catch {
  // Not permitted or not supported here: executors then compete with the main thread as equals.
}

const host = new SessionHost();
let exitOnNextRun = false;

port.on('message', (command: ExecutorCommand) => {
  void handle(command).then(
    (reply) => port.postMessage(reply, reply.ok && reply.outputs ? transferList(Object.values(reply.outputs)) : []),
    (error: unknown) =>
      port.postMessage({ callId: command.callId, ok: false, message: String((error as Error)?.message ?? error), errorName: (error as Error)?.name } satisfies ExecutorReply),
  );
});

async function handle(command: ExecutorCommand): Promise<ExecutorReply> {
  switch (command.op) {
    case 'load':
      return { callId: command.callId, ok: true, info: await host.load(command.modelId, command.file, command.providers, command.tuning) };
    case 'run':
      if (exitOnNextRun) process.exit(70);
      return { callId: command.callId, ok: true, outputs: await host.run(command.modelId, command.feeds, command.outputNames) };
    case 'release':
      await host.release(command.modelId);
      return { callId: command.callId, ok: true };
    case 'exit-on-next-run':
      exitOnNextRun = true;
      return { callId: command.callId, ok: true };
  }
}
