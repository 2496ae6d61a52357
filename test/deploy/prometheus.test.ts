import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { FIXTURE_BUNDLES, REPO_ROOT } from '../helpers/paths.js';

const RULES = join(REPO_ROOT, 'helm', 'stepframe', 'rules');
const found = (binary: string) => spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;
const skip = found('promtool') && found('prometheus') ? false : "skipped: Debian's prometheus package (prometheus, promtool) is not installed; bash .ci/run installs it";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The server process on the fixtures, with /metrics on `metricsPort`; resolves once it is serving. */
async function startStepframe(metricsPort: number, flags: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'server', 'main.js'), '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1',
    '--metrics-port', String(metricsPort), '--model-dir', FIXTURE_BUNDLES, '--execution-providers', 'cpu', '--executors', '1', ...flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  let port = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { message: string; address?: string };
      if (entry.message === 'gRPC server listening') port = Number(String(entry.address).split(':').pop());
      if (entry.message === 'serving') resolve();
    });
  });
  return { child, port };
}

async function query(prometheus: string, promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const response = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', promql);
  return body.data.result;
}

describe('metrics read by a real Prometheus', { skip }, () => {
  test('promtool accepts the rules and their unit tests on synthetic series', () => {
    execFileSync('promtool', ['check', 'rules', join(RULES, 'stepframe.rules.yaml')], { stdio: 'pipe' });
    execFileSync('promtool', ['test', 'rules', 'stepframe.rules.test.yaml'], { cwd: RULES, stdio: 'pipe' });
  });

  test('promtool check metrics passes on /metrics; Prometheus scrapes a loaded server and the HPA query returns the pod', async (t) => {
    const metricsPort = await freePort();
    const { child, port } = await startStepframe(metricsPort, ['--max-active-sequences', '1', '--max-queued-sequences', '16']);
    t.after(() => child.kill('SIGKILL'));
    const dir = mkdtempSync(join(tmpdir(), 'stepframe-prometheus-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const webPort = await freePort();
    // Static target with the labels Kubernetes service discovery would give it, so the adapter's
    // seriesQuery (namespace and pod set) matches as it would in a cluster.
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ["${join(RULES, 'stepframe.rules.yaml')}"]`,
      'scrape_configs:',
      '  - job_name: stepframe',
      `    static_configs: [{ targets: ["127.0.0.1:${metricsPort}"], labels: { namespace: "test", pod: "stepframe-0" } }]`,
    ].join('\n'));
    const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`], { stdio: 'ignore' });
    t.after(() => prometheus.kill('SIGKILL'));
    const api = `http://127.0.0.1:${webPort}`;

    // Prometheus up and scraping the server before the load starts.
    for (let i = 0; i < 120; i++) {
      const up = await query(api, 'up{job="stepframe"}').catch(() => []);
      if (up[0]?.value[1] === '1') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // Load: 6 sequences against one slot, so the queue is seen non-empty by the 1 s scrapes.
    const client = new StepframeClient(`127.0.0.1:${port}`);
    t.after(() => client.close());
    let queuedSeen = 0;
    const sampler = setInterval(() => void fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(async (r) => {
      const depth = Number(/^stepframe_queue_depth\{[^}]*\} (\d+)/m.exec(await r.text())?.[1] ?? 0);
      queuedSeen = Math.max(queuedSeen, depth);
    }), 200);
    await Promise.all(Array.from({ length: 6 }, (_, i) => (async () => {
      for await (const _ of client.generate({ steps: ['stir', 'serve'], numInferenceSteps: 300, seed: BigInt(i) })) void _;
    })()));
    clearInterval(sampler);
    assert.ok(queuedSeen >= 2, `queue depth peaked at ${queuedSeen}`);

    const exposition = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);

    // Wait for a scrape after the load, then read what Prometheus stored.
    let ok: { metric: Record<string, string>; value: [number, string] }[] = [];
    for (let i = 0; i < 60; i++) {
      ok = await query(api, 'stepframe_requests_total{method="GenerateSequence",code="OK"}').catch(() => []);
      if (Number(ok[0]?.value[1] ?? 0) >= 6) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(Number(ok[0]?.value[1]), 6, 'six OK requests counted');
    assert.ok(Number((await query(api, 'max_over_time(stepframe_queue_depth[2m])'))[0].value[1]) >= 1, 'the queue depth moved');
    // The default fixture (attend_to_image) guides text and image separately: 3 rows a denoising step.
    assert.equal(Number((await query(api, 'sum(stepframe_batch_rows_sum{model="unet"})'))[0].value[1]), 6 * 2 * 300 * 3, 'UNet batch rows recorded');
    assert.equal(Number((await query(api, 'sum(stepframe_time_to_first_image_seconds_count)'))[0].value[1]), 6);
    // The README's adapter rule: one value per pod.
    const hpa = await query(api, 'avg_over_time(stepframe_queue_depth{namespace!="",pod!=""}[1m])');
    assert.deepEqual(hpa.map((r) => r.metric.pod), ['stepframe-0']);
    for (let i = 0; i < 20 && (await query(api, 'stepframe:queue_depth:avg1m')).length === 0; i++) await new Promise((r) => setTimeout(r, 500));
    assert.equal((await query(api, 'stepframe:queue_depth:avg1m')).length, 1, 'the recording rule evaluates');
  });
});
