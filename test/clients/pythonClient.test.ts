import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import { REPO_ROOT } from '../helpers/paths.js';
import { startTestServer } from '../helpers/testServer.js';

const PYTHON = '/usr/bin/python3';
const hasGrpc = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status === 0;
const hasProtoc = spawnSync('sh', ['-c', 'command -v protoc && command -v grpc_python_plugin'], { stdio: 'ignore' }).status === 0;

describe('Python client', () => {
  test('the example generates a sequence against a live server', { skip: hasGrpc ? false : 'skipped: python3-grpcio is not installed (.ci/run installs it)' }, async (t) => {
    const { address } = await startTestServer(t);
    const out = mkdtempSync(join(tmpdir(), 'stepframe-py-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const { stdout } = await promisify(execFile)(PYTHON, [join(REPO_ROOT, 'clients', 'python', 'example.py'), '--address', address, '--out', out, '--inference-steps', '2', '--seed', '5', 'chop the carrots', 'fry the carrots'], { cwd: REPO_ROOT });
    assert.match(stdout, /2 images, seed 5/);
    assert.deepEqual(readdirSync(out).sort(), ['step-01.png', 'step-02.png']);
    assert.equal(readFileSync(join(out, 'step-01.png')).subarray(1, 4).toString(), 'PNG');
  });

  test('the committed stubs are what protoc generates from proto/', { skip: hasProtoc ? false : 'skipped: protoc or grpc_python_plugin missing (.ci/run installs them)' }, (t) => {
    const out = mkdtempSync(join(tmpdir(), 'stepframe-stubs-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const result = spawnSync('bash', [join(REPO_ROOT, 'clients', 'python', 'generate.sh'), out], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    for (const file of ['sequence_service_pb2.py', 'sequence_service_pb2_grpc.py']) {
      const committed = readFileSync(join(REPO_ROOT, 'clients', 'python', 'generated', 'stepframe', 'v1', file), 'utf8');
      assert.equal(readFileSync(join(out, 'stepframe', 'v1', file), 'utf8'), committed, `${file} is stale: run clients/python/generate.sh`);
    }
  });
});
