import assert from 'node:assert/strict';
import { spawnSync, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import * as grpc from '@grpc/grpc-js';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { startTestServer } from '../helpers/testServer.js';

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** A throwaway CA, and a server and a client certificate it signed, made with openssl. */
function makeCertificates(dir: string): void {
  const sh = (args: string) => {
    const result = spawnSync('sh', ['-c', args], { cwd: dir, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  };
  sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=stepframe test CA"');
  for (const name of ['server', 'client']) {
    sh(`openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj "/CN=${name}"`);
    sh(`printf "subjectAltName=IP:127.0.0.1,DNS:localhost" > ${name}.ext && openssl x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out ${name}.crt -days 1 -extfile ${name}.ext`);
  }
}

describe('TLS', { skip: hasOpenssl ? false : 'skipped: openssl is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepframe-tls-'));
  if (hasOpenssl) makeCertificates(dir);
  const read = (file: string) => readFileSync(join(dir, file));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('with --tls-cert/--tls-key the server speaks TLS only', async (t) => {
    const { server } = await startTestServer(t, ['--tls-cert', join(dir, 'server.crt'), '--tls-key', join(dir, 'server.key')]);
    const secure = new StepframeClient(`127.0.0.1:${server.port}`, grpc.credentials.createSsl(read('ca.crt')));
    t.after(() => secure.close());
    assert.equal((await secure.listModels({ timeoutMs: 10_000 })).models.length, 6);
    const plain = new StepframeClient(`127.0.0.1:${server.port}`);
    t.after(() => plain.close());
    // The plaintext client never gets a usable connection: UNAVAILABLE, not a timeout or an answer.
    await assert.rejects(plain.listModels({ timeoutMs: 3000 }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE, `${grpc.status[error.code]}: ${error.details}`);
      return true;
    });
  });

  test('with --tls-client-ca the server requires a client certificate (mTLS)', async (t) => {
    const { server } = await startTestServer(t, ['--tls-cert', join(dir, 'server.crt'), '--tls-key', join(dir, 'server.key'), '--tls-client-ca', join(dir, 'ca.crt')]);
    // The client package's own TLS options, PEM in, as a team would pass them.
    const withCert = new StepframeClient(`127.0.0.1:${server.port}`, { tls: { ca: read('ca.crt'), key: read('client.key'), cert: read('client.crt') } });
    t.after(() => withCert.close());
    assert.equal((await withCert.listModels({ timeoutMs: 10_000 })).models.length, 6);
    const withoutCert = new StepframeClient(`127.0.0.1:${server.port}`, grpc.credentials.createSsl(read('ca.crt')));
    t.after(() => withoutCert.close());
    // The handshake is refused for want of a client certificate: UNAVAILABLE, not a timeout.
    await assert.rejects(withoutCert.listModels({ timeoutMs: 3000 }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE, `${grpc.status[error.code]}: ${error.details}`);
      return true;
    });
  });

  /** The image's HEALTHCHECK command, run as the container runs it, with the server's settings in its environment. */
  function healthcheck(env: Record<string, string>): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'server', 'healthcheck.js')], { env: { ...process.env, ...env } }, (error, stdout) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout.trim() }));
    });
  }

  test('the HEALTHCHECK probes a TLS server over TLS (it dialled plaintext and was unhealthy forever)', async (t) => {
    const { server } = await startTestServer(t, ['--tls-cert', join(dir, 'server.crt'), '--tls-key', join(dir, 'server.key')]);
    const result = await healthcheck({ STEPFRAME_PORT: String(server.port), STEPFRAME_TLS_CERT: join(dir, 'server.crt'), STEPFRAME_TLS_KEY: join(dir, 'server.key') });
    assert.deepEqual(result, { code: 0, output: 'SERVING' });
    const plaintext = await healthcheck({ STEPFRAME_PORT: String(server.port) });
    assert.equal(plaintext.code, 1, 'a plaintext probe of a TLS server fails');
  });

  test('the HEALTHCHECK of an mTLS server presents the server\'s certificate as its client certificate', async (t) => {
    // The CA that signed the clients signed the server too, as in most internal PKIs.
    const flags = { STEPFRAME_TLS_CERT: join(dir, 'server.crt'), STEPFRAME_TLS_KEY: join(dir, 'server.key'), STEPFRAME_TLS_CLIENT_CA: join(dir, 'ca.crt') };
    const { server } = await startTestServer(t, ['--tls-cert', flags.STEPFRAME_TLS_CERT, '--tls-key', flags.STEPFRAME_TLS_KEY, '--tls-client-ca', flags.STEPFRAME_TLS_CLIENT_CA]);
    assert.deepEqual(await healthcheck({ STEPFRAME_PORT: String(server.port), ...flags }), { code: 0, output: 'SERVING' });
  });
});
