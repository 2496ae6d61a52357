import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import * as grpc from '@grpc/grpc-js';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
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
});
