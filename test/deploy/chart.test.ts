import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { parse } from 'yaml';

import { OPTIONS, parseConfig } from '../../src/server/config.js';
import { REPO_ROOT } from '../helpers/paths.js';

const CHART = join(REPO_ROOT, 'helm', 'stepframe');
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, any>;
const deployment = readFileSync(join(CHART, 'templates', 'deployment.yaml'), 'utf8');

/**
 * Renders the "then" branch of every if/with (dropping else branches) and replaces the remaining
 * actions with a placeholder, so the structure around them can be parsed as YAML.
 */
function stripTemplate(text: string): string {
  const out: string[] = [];
  const skipping: boolean[] = [];
  let placeholders = 0;
  for (const line of text.split('\n')) {
    const action = /^\s*\{\{-?\s*(if|else|end|with|range|define)\b.*\}\}\s*$/.exec(line)?.[1];
    if (action === 'if' || action === 'with' || action === 'range' || action === 'define') skipping.push(skipping.at(-1) ?? false);
    else if (action === 'else') skipping[skipping.length - 1] = true;
    else if (action === 'end') skipping.pop();
    else if (skipping.at(-1)) continue;
    // A line that is only an action (toYaml, include) stands for a block of keys.
    else if (/^\s*\{\{.*\}\}\s*$/.test(line)) out.push(`${line.match(/^\s*/)![0]}templated_${placeholders++}: true`);
    else out.push(line.replace(/\{\{-?[^}]*\}\}/g, 'TEMPLATED'));
  }
  return out.join('\n');
}

describe('helm chart (static checks; no helm binary here)', () => {
  test('Chart.yaml and values.yaml parse, and every template parses once its actions are stubbed', () => {
    assert.equal(parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')).name, 'stepframe');
    for (const file of readdirSync(join(CHART, 'templates')).filter((f) => f.endsWith('.yaml'))) {
      assert.doesNotThrow(() => parse(stripTemplate(readFileSync(join(CHART, 'templates', file), 'utf8'))), file);
    }
  });

  test('every server setting the chart passes exists in the server config and parses with its value', () => {
    const pairs = [...deployment.matchAll(/- name: ([A-Z_]+)\n\s+value: \{\{ \.Values\.server\.(\w+) \| quote \}\}/g)];
    assert.ok(pairs.length >= 12, `found ${pairs.length} env settings`);
    for (const [, env, key] of pairs) {
      const option = OPTIONS.find((o) => o.env === env);
      assert.ok(option, `${env} is not a server setting`);
      assert.ok(key in values.server, `values.server.${key} is missing`);
      const value = values.server[key];
      const config = parseConfig([], { [env]: String(value) }) as unknown as Record<string, unknown>;
      const parsed = config[option.key];
      if (value !== '') assert.equal(Array.isArray(parsed) ? parsed.join(',') : String(parsed), String(value), `${env}=${value}`);
    }
  });

  test('every values.server key is passed to the server', () => {
    for (const key of Object.keys(values.server)) assert.match(deployment, new RegExp(`\\.Values\\.server\\.${key}\\b`), key);
  });

  test('ports and probes agree with the server defaults', () => {
    const defaults = parseConfig([], {});
    assert.equal(values.server.port, defaults.port);
    assert.equal(values.server.metricsPort, defaults.metricsPort);
    assert.equal(values.service.port, defaults.port);
    assert.match(deployment, /grpc:\n\s+port: \{\{ \.Values\.server\.port \}\}\n\s+service: stepframe\.v1\.SequenceService/);
    assert.match(deployment, /terminationGracePeriodSeconds: \{\{ add \.Values\.server\.drainTimeoutS 15 \}\}/);
  });

  test('the pod runs as the image\'s non-root user with a read-only root filesystem', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^USER 10001:10001$/m);
    assert.equal(values.podSecurityContext.runAsUser, 10001);
    assert.equal(values.podSecurityContext.runAsNonRoot, true);
    assert.equal(values.securityContext.readOnlyRootFilesystem, true);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

  test('installs from the lockfile and starts the same entry point as npm start', () => {
    assert.match(dockerfile, /RUN npm ci --omit=dev/);
    assert.match(dockerfile, /ENTRYPOINT \["node", "dist\/src\/server\/main\.js"\]/);
    assert.ok(pkg.scripts.start.includes('node dist/src/server/main.js'));
    assert.match(readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8'), /^npm ci$/m);
  });

  test('the GPU variant installs the CUDA 12 provider by name with the package\'s own script, and fails the build without it', () => {
    assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
    assert.match(dockerfile, /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/);
    assert.match(dockerfile, /exit 1/);
    assert.doesNotMatch(dockerfile, /--allow-scripts/, 'npm 11 rejects --allow-scripts on a project install');
    assert.match(dockerfile, /HEALTHCHECK .*dist\/src\/server\/healthcheck\.js/);
    assert.match(dockerfile, /cudnn/);
  });

  test('every stage resolves: a final stage per variant (cpu last, the default), each FROM and COPY --from names a stage or an image', () => {
    const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => ({ base: m[1], name: m[2] }));
    const names = stages.map((s) => s.name);
    assert.equal(names.at(-1), 'cpu');
    assert.ok(names.includes('gpu'));
    assert.doesNotMatch(dockerfile, /^FROM \S*\$\{/m, 'buildah cannot resolve a stage named through a build argument');
    for (const stage of stages) assert.ok(names.indexOf(stage.base) < names.indexOf(stage.name) || stage.base.includes(':'), `${stage.name} FROM ${stage.base}`);
    for (const m of dockerfile.matchAll(/COPY --from=(\S+)/g)) assert.ok(names.includes(m[1]), `COPY --from=${m[1]} names no stage`);
  });

  test('npm runs no dependency install script, with npm 10 as with npm 11 (.npmrc, read by both)', () => {
    assert.match(readFileSync(join(REPO_ROOT, '.npmrc'), 'utf8'), /^ignore-scripts=true$/m);
    assert.match(dockerfile, /COPY package\.json package-lock\.json \.npmrc/);
  });

  test('.dockerignore keeps training data and tests out of the image', () => {
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const path of ['training', 'test', 'bench', 'node_modules', '.git']) assert.ok(ignore.includes(path), path);
  });
});
