import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type ServiceError, status } from '@grpc/grpc-js';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { startTestServer } from '../helpers/testServer.js';

describe('the TypeScript client', () => {
  test('retries RESOURCE_EXHAUSTED with backoff when asked, and not by default', async (t) => {
    const { client, address } = await startTestServer(t, ['--max-active-sequences', '1', '--max-queued-sequences', '0']);
    const long = client.collect({ steps: ['stir', 'stir'], numInferenceSteps: 150 });
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(client.collect({ steps: ['serve'], numInferenceSteps: 2 }), (error: ServiceError) => error.code === status.RESOURCE_EXHAUSTED);
    const patient = new StepframeClient(address, { retry: { maxAttempts: 40, initialBackoffMs: 50, maxBackoffMs: 200 } });
    t.after(() => patient.close());
    const { images } = await patient.collect({ steps: ['serve'], numInferenceSteps: 2 }, { timeoutMs: 60_000 });
    assert.equal(images.length, 1);
    assert.equal((await long).images.length, 2);
  });

  test('round_robin over a DNS name: every call is served', async (t) => {
    const { server } = await startTestServer(t);
    const client = new StepframeClient(`dns:///localhost:${server.port}`, { roundRobin: true });
    t.after(() => client.close());
    for (let i = 0; i < 3; i++) assert.equal((await client.collect({ steps: ['stir'], numInferenceSteps: 2 })).images.length, 1);
  });
});
