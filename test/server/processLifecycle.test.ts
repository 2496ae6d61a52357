import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';

import { type ServiceError, status } from '@grpc/grpc-js';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { FIXTURE_BUNDLES, REPO_ROOT } from '../helpers/paths.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts dist/src/server/main.js and resolves once it logs "serving", with the bound gRPC port. */
async function startProcess(args: string[]): Promise<{ child: ChildProcess; port: number; lines: Record<string, unknown>[]; stderr: string[] }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'server', 'main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  let port = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.message === 'gRPC server listening') port = Number(String(entry.address).split(':').pop());
      if (entry.message === 'serving') resolve();
    });
  });
  return { child, port, lines, stderr };
}

describe('the server process', () => {
  test('SIGTERM with a request in flight: the request completes, new calls get UNAVAILABLE, the process exits 0', async (t) => {
    const metricsPort = await freePort();
    const { child, port, lines } = await startProcess([
      '--host', '127.0.0.1', '--port', '0', '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1',
      '--model-dir', FIXTURE_BUNDLES, '--execution-providers', 'cpu', '--intra-op-threads', '1', '--drain-timeout-s', '30',
    ]);
    t.after(() => child.kill('SIGKILL'));
    const client = new StepframeClient(`127.0.0.1:${port}`);
    t.after(() => client.close());
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    const received: string[] = [];
    let lateCall: Promise<unknown> | null = null;
    // 300 denoising steps keep the request in flight well past the late call, even on the fixtures' small UNet
    // (at 30 steps the request could finish first, and the late call then met a closed port instead of UNAVAILABLE).
    for await (const event of client.generate({ steps: ['chop the carrots', 'fry the carrots', 'serve'], numInferenceSteps: 300 })) {
      received.push(event.$case);
      if (received.length === 1) {
        child.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 100));
        // Settled into a value now, asserted below: a rejection must not go unhandled meanwhile.
        lateCall = (async () => {
          for await (const _ of client.generate({ steps: ['stir'] })) void _;
        })().then(
          () => null,
          (error: unknown) => error,
        );
      }
    }
    assert.deepEqual(received, ['image', 'image', 'image', 'summary']);
    const lateError = (await lateCall) as ServiceError | null;
    assert.equal(lateError?.code, status.UNAVAILABLE);
    assert.match(lateError.details, /shutting down/);
    assert.equal(await exited, 0);
    assert.ok(lines.some((l) => l.message === 'stopped' && l.drained === true));
  });

  test('/metrics serves the stepframe_ metrics in Prometheus format; with the default providers and no CUDA, one warning and no ONNX Runtime text', async (t) => {
    const metricsPort = await freePort();
    // The default --execution-providers is cuda,cpu: on a machine without CUDA every model falls back to CPU.
    const { child, port, lines, stderr } = await startProcess([
      '--host', '127.0.0.1', '--port', '0', '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1',
      '--model-dir', FIXTURE_BUNDLES, '--intra-op-threads', '1',
    ]);
    const cudaLoads = lines.some((l) => l.message === 'model loaded' && l.provider === 'cuda');
    if (!cudaLoads) {
      assert.deepEqual(lines.filter((l) => l.level === 'warn').map((l) => l.message), ['execution provider cuda is unavailable; running on cpu instead']);
      assert.doesNotMatch(stderr.join(''), /onnxruntime/i);
    }
    t.after(() => child.kill('SIGKILL'));
    const client = new StepframeClient(`127.0.0.1:${port}`);
    t.after(() => client.close());
    for await (const _ of client.generate({ steps: ['stir'], numInferenceSteps: 3 })) void _;
    await assert.rejects((async () => { for await (const _ of client.generate({ steps: [] })) void _; })());
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const metric of [
      'stepframe_requests_total{method="GenerateSequence",code="OK",grpc_status="OK"',
      'stepframe_requests_total{method="GenerateSequence",code="INVALID_ARGUMENT",grpc_status="INVALID_ARGUMENT"',
      'stepframe_batch_rows_bucket{model="unet"',
      'stepframe_unet_step_seconds_count',
      'stepframe_time_to_first_image_seconds_count',
      'stepframe_images_generated_total',
      'stepframe_stage_seconds_bucket{stage="denoiseMs"',
      'stepframe_queue_depth',
      'stepframe_active_sequences',
      `stepframe_models{provider="${cudaLoads ? 'cuda' : 'cpu'}"`,
      'stepframe_executors{',
      // Every bundle loads once at start; with no budget none is ever unloaded.
      'stepframe_bundle_loads_total{model="concatenation"',
      'stepframe_bundle_load_seconds_count{model="baseline"',
      'stepframe_bundles_loaded{',
      'stepframe_loaded_weight_bytes{',
    ]) {
      assert.ok(text.includes(metric), `missing ${metric}`);
    }
    assert.match(text, /^stepframe_bundles_loaded\{[^}]*\} 6$/m);
    assert.doesNotMatch(text, /stepframe_bundle_unloads_total\{/);
  });
});
