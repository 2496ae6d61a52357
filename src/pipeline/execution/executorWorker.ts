/**
 * The body of one executor thread: it owns its ONNX Runtime sessions and answers the main thread's
 * commands one at a time. A model call blocks only this thread, never the server's event loop.
 */
import { parentPort } from 'node:worker_threads';

import { type ExecutorCommand, type ExecutorReply, transferList } from './protocol.js';
import { SessionHost } from './sessionHost.js';

const port = parentPort;
if (!port) throw new Error('executorWorker.js runs as a worker thread, started by WorkerExecutor');

const host = new SessionHost();
let exitOnNextRun = false;

port.on('message', (command: ExecutorCommand) => {
  void handle(command).then(
    (reply) => port.postMessage(reply, reply.ok && reply.outputs ? transferList(Object.values(reply.outputs)) : []),
    (error: unknown) => port.postMessage({ callId: command.callId, ok: false, message: String((error as Error)?.message ?? error) } satisfies ExecutorReply),
  );
});

async function handle(command: ExecutorCommand): Promise<ExecutorReply> {
  switch (command.op) {
    case 'load':
      return { callId: command.callId, ok: true, info: await host.load(command.modelId, command.file, command.providers, command.threads) };
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
