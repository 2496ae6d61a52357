/**
 * A soak run against a real server process: mixed load for `--minutes` (default 10) while the
 * server's RSS, open file descriptors and event-loop delay are sampled every 5 s. The load mixes
 * concurrent sequences at different schedulers, step counts and eta values; cancellations and
 * deadlines; malformed requests; slow readers that stop reading and come back; and a 16 MiB
 * request every 30 s, timed. Writes bench/results/soak.json and its table in docs/performance.md.
 *
 *   npm run build && npm run bench:bundles && node dist/bench/soak.js [--minutes 10]
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { type ServiceError, status } from '@grpc/grpc-js';

import { StepframeClient } from '../clients/typescript/stepframeClient.js';

const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '10' }, models: { type: 'string', default: 'bench/results/tmp/bundles' }, 'report-only': { type: 'boolean', default: false } },
});
const REPO = process.cwd();
const durationMs = Number(args.minutes) * 60_000;
const METRICS_PORT = 19_470;

interface Sample {
  t: number;
  rssMb: number;
  fds: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

/** Runs the load against a server process and returns what the summary needs. */
async function soak(): Promise<Record<string, any>> {
  const child = spawn(process.execPath, [join(REPO, 'dist', 'src', 'server', 'main.js'), '--host', '127.0.0.1', '--port', '0', '--metrics-port', String(METRICS_PORT),
    '--metrics-host', '127.0.0.1', '--model-dir', args.models!, '--execution-providers', 'cpu', '--max-steps', '16', '--max-stall-s', '20', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { message: string; address?: string };
      if (entry.message === 'gRPC server listening') resolve(Number(String(entry.address).split(':').pop()));
    });
  });
  const client = new StepframeClient(`127.0.0.1:${port}`, undefined, { 'grpc.max_send_message_length': 32 * 2 ** 20 });
  for (let i = 0; i < 300; i++) {
    const models = await new Promise<number>((resolve) => client.raw.listModels({}, (e, r) => resolve(e ? 0 : r!.models.length)));
    if (models > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }

  const byStatus = new Map<string, number>();
  const count = (label: string) => byStatus.set(label, (byStatus.get(label) ?? 0) + 1);
  const started = Date.now();
  const running = () => Date.now() - started < durationMs;
  const SCHEDULERS = ['ddpm', 'ddim', 'pndm', 'lms', 'euler', 'euler_ancestral', 'dpmpp_2m'];
  let n = 0;

  async function call(request: Record<string, unknown>, options: { timeoutMs?: number; signal?: AbortSignal; pauseMs?: number } = {}): Promise<void> {
    try {
      let first = true;
      for await (const _ of client.generate(request, options)) {
        if (first && options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
        first = false;
      }
      count('OK');
    } catch (error) {
      count(status[(error as ServiceError).code] ?? 'NO_STATUS');
    }
  }

  const mixes: (() => Promise<void>)[] = [
    () => call({ steps: ['chop the carrots', 'fry the carrots'], numInferenceSteps: 10 + (n % 20), scheduler: SCHEDULERS[n % SCHEDULERS.length], eta: (n % 100) / 100, seed: BigInt(n++) }),
    () => call({ steps: ['stir'], numInferenceSteps: 4, seed: BigInt(n++), guidanceScale: 1 + (n % 9) }),
    () => { const c = new AbortController(); setTimeout(() => c.abort(), 50 + (n % 400)); return call({ steps: ['bake', 'serve'], numInferenceSteps: 30, seed: BigInt(n++) }, { signal: c.signal }); },
    () => call({ steps: ['boil', 'drain', 'serve'], numInferenceSteps: 40, seed: BigInt(n++) }, { timeoutMs: 100 + (n % 500) }),
    () => call({ steps: [], seed: BigInt(n++) }),
    () => call({ steps: ['stir'], model: 'x'.repeat(10_000 + (n++ % 1000)) }),
    () => call({ steps: Array.from({ length: 12 }, (_, i) => `step ${i}`), numInferenceSteps: 2, seed: BigInt(n++) }, { pauseMs: 2000 + (n % 5000) }),
  ];

  const samples: Sample[] = [];
  const largeRequestMs: number[] = [];
  const proc = (file: string) => readFileSync(`/proc/${child.pid}/${file}`, 'utf8');
  async function sample(): Promise<void> {
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(proc('status'))![1]);
    const fds = readdirSync(`/proc/${child.pid}/fd`).length;
    const metrics = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
    const stat = (name: string) => Number(new RegExp(`stepframe_event_loop_delay_seconds\\{stat="${name}"[^}]*\\} ([0-9.e+-]+)`).exec(metrics)?.[1] ?? NaN) * 1000;
    samples.push({ t: (Date.now() - started) / 1000, rssMb: rssKb / 1024, fds, loopP99Ms: stat('p99'), loopMaxMs: stat('max') });
  }

  const sampler = setInterval(() => void sample(), 5000);
  const large = setInterval(() => {
    const t0 = performance.now();
    // 16 MiB that is not an image: the server must read it all, then refuse it by name.
    void call({ steps: ['stir'], initImage: Buffer.alloc(16 * 2 ** 20 - 1024, 7) }).then(() => largeRequestMs.push(performance.now() - t0));
  }, 30_000);
  await Promise.all(Array.from({ length: 12 }, async (_, worker) => {
    while (running()) await mixes[(worker + n) % mixes.length]();
  }));
  clearInterval(sampler);
  clearInterval(large);
  // The growth is measured over the load; one more sample after it, once the last large request is done.
  const duringLoad = samples.length;
  while (largeRequestMs.length < Math.floor(durationMs / 30_000)) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 5000));
  await sample();
  client.close();
  child.kill('SIGTERM');
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { date: new Date().toISOString(), minutes: Number(args.minutes), byStatus: Object.fromEntries(byStatus), samples, duringLoad, largeRequestMs, exitCode };
}

/** The summary and the docs/performance.md table, from a run or from bench/results/soak.json. */
function report(run: Record<string, any>): void {
  const samples = run.samples as Sample[];
  const load = samples.slice(0, run.duringLoad as number);
  const byStatus = new Map<string, number>(Object.entries(run.byStatus as Record<string, number>));
  const largeRequestMs = run.largeRequestMs as number[];
  const exitCode = run.exitCode as number | null;
  // Growth over the last 8 minutes (the last 80% of the load): the median RSS of the window's last
  // minute against that of its first minute, so one high-water sample (a 16 MiB request the
  // allocator keeps pages for) reads as the peak it is, not as growth; and a least-squares slope.
  const from = load.find((s) => s.t >= load.at(-1)!.t * 0.2)!;
  const last = load.at(-1)!;
  const after = samples.at(-1)!;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const firstMinute = median(load.filter((s) => s.t >= from.t && s.t < from.t + 60).map((s) => s.rssMb));
  const lastMinute = median(load.filter((s) => s.t > last.t - 60).map((s) => s.rssMb));
  const slope = (() => {
    const xs = load.filter((s) => s.t >= from.t);
    const mx = xs.reduce((a, s) => a + s.t, 0) / xs.length;
    const my = xs.reduce((a, s) => a + s.rssMb, 0) / xs.length;
    return xs.reduce((a, s) => a + (s.t - mx) * (s.rssMb - my), 0) / xs.reduce((a, s) => a + (s.t - mx) ** 2, 0);
  })();
  const results: Record<string, any> = {
    ...run, requests: Object.fromEntries(byStatus), total: [...byStatus.values()].reduce((a, b) => a + b, 0),
    rss: { firstMinuteMb: firstMinute, lastMinuteMb: lastMinute, growth: lastMinute / firstMinute - 1, slopeMbPerMinute: slope * 60, peakMb: Math.max(...load.map((s) => s.rssMb)), afterLoadMb: after.rssMb },
    fds: { first: samples[0].fds, last: last.fds, max: Math.max(...samples.map((s) => s.fds)) },
    eventLoop: { worstP99Ms: Math.max(...samples.map((s) => s.loopP99Ms).filter(Number.isFinite)), medianP99Ms: [...samples.map((s) => s.loopP99Ms)].sort((a, b) => a - b)[Math.floor(samples.length / 2)], maxMs: Math.max(...samples.map((s) => s.loopMaxMs).filter(Number.isFinite)) },
    serverExit: exitCode,
  };
  writeFileSync(join(REPO, 'bench', 'results', 'soak.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(JSON.stringify({ ...results, samples: samples.length }));

  const fmt = (x: number, d = 1) => x.toFixed(d);
  const table = [
    `Measured ${results.date.slice(0, 10)}: ${results.minutes} minutes of mixed load from 12 concurrent clients against a server process on the seeded default-size bundles (\`node dist/bench/soak.js --minutes ${results.minutes}\`).`,
    '',
    '| measure | result | goal |',
    '| --- | --- | --- |',
    `| requests by status | ${[...byStatus.entries()].sort().map(([k, v]) => `${k} ${v}`).join(', ')} (${results.total} in all) | every request gets a status |`,
    `| RSS over the last ${fmt(last.t - from.t, 0)} s of load, median of its first minute → median of its last | ${fmt(firstMinute, 0)} → ${fmt(lastMinute, 0)} MiB = **${fmt(results.rss.growth * 100)}%** (least-squares slope ${fmt(results.rss.slopeMbPerMinute, 2)} MiB/min; peak sample ${fmt(results.rss.peakMb, 0)}; 5 s after the load ${fmt(after.rssMb, 0)}) | ≤ 5% |`,
    `| open file descriptors, first / last / max sample | ${results.fds.first} / ${results.fds.last} / ${results.fds.max} | no growth |`,
    `| main-thread event-loop delay per 5 s sample: median p99 / worst p99 / max | ${fmt(results.eventLoop.medianP99Ms)} / ${fmt(results.eventLoop.worstP99Ms)} / ${fmt(results.eventLoop.maxMs)} ms | |`,
    `| a 16 MiB request under this load (refused by name), time to its status | ${largeRequestMs.map((x) => fmt(x / 1000, 2)).join(', ')} s | |`,
    `| server exit code after SIGTERM | ${exitCode} | 0 |`,
  ].join('\n');
  const docFile = join(REPO, 'docs', 'performance.md');
  const doc = readFileSync(docFile, 'utf8');
  writeFileSync(docFile, doc.includes('<!-- bench:soak:start -->')
    ? doc.replace(/<!-- bench:soak:start -->[\s\S]*<!-- bench:soak:end -->/, `<!-- bench:soak:start -->\n${table}\n<!-- bench:soak:end -->`)
    : doc.replace('## Verifying weights at start-up', `## Soak run (issue 26)\n\n<!-- bench:soak:start -->\n${table}\n<!-- bench:soak:end -->\n\n## Verifying weights at start-up`));

}

const run = args['report-only'] ? (JSON.parse(readFileSync(join(REPO, 'bench', 'results', 'soak.json'), 'utf8')) as Record<string, any>) : await soak();
report(run);
