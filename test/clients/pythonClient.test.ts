import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import { REPO_ROOT } from '../helpers/paths.js';
import { readmeExample } from '../helpers/readmeExamples.js';
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
      const committed = readFileSync(join(REPO_ROOT, 'clients', 'python', 'stepframe_client', '_generated', file), 'utf8');
      assert.equal(readFileSync(join(out, file), 'utf8'), committed, `${file} is stale: run clients/python/generate.sh`);
    }
  });

  const hasVenv = hasGrpc && spawnSync(PYTHON, ['-c', 'import venv, ensurepip, setuptools'], { stdio: 'ignore' }).status === 0;
  test('the package installs with pip into a fresh virtual environment and drives a live server from outside the repository', { skip: hasVenv ? false : 'skipped: python3-venv, python3-pip or python3-setuptools missing (.ci/run installs them)' }, async (t) => {
    const { address } = await startTestServer(t);
    const work = mkdtempSync(join(tmpdir(), 'stepframe-venv-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const run = promisify(execFile);
    // Debian's grpcio and protobuf satisfy the dependencies: nothing is downloaded.
    await run(PYTHON, ['-m', 'venv', '--system-site-packages', join(work, 'venv')]);
    // pip builds in the source folder (build/, *.egg-info), so it gets a copy, not the repository's.
    cpSync(join(REPO_ROOT, 'clients', 'python'), join(work, 'source'), { recursive: true });
    await run(join(work, 'venv', 'bin', 'pip'), ['install', '--quiet', '--no-index', '--no-build-isolation', join(work, 'source')], { cwd: work });
    const script = [
      'import sys, stepframe_client',
      'from stepframe_client import StepframeClient, cancel_after',
      'assert "site-packages" in stepframe_client.__file__, stepframe_client.__file__',
      'with StepframeClient(sys.argv[1]) as client:',
      '    sequence = client.collect(["chop the carrots", "stir"], num_inference_steps=2, seed=5, timeout=60)',
      '    call = client.generate(["stir"] * 3, num_inference_steps=300)',
      '    cancel_after(call, 0.3)',
      '    try:',
      '        for _ in call: pass',
      '        cancelled = "no"',
      '    except Exception as error:',
      '        cancelled = error.code().name',
      '    print(len(sequence.images), sequence.summary.images, len(client.list_models().models), cancelled)',
    ].join('\n');
    const { stdout } = await run(join(work, 'venv', 'bin', 'python'), ['-c', script, address], { cwd: work });
    assert.equal(stdout.trim(), '2 2 6 CANCELLED');
    // The README's example, run in the same environment.
    const readme = await run(join(work, 'venv', 'bin', 'python'), ['-c', readmeExample('### Python', 'python', address)], { cwd: work });
    assert.match(readme.stdout, /^(progress\n)+image\nsummary\n$/);
  });
});
