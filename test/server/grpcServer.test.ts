import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { test } from 'node:test';

import { CONTROL_STREAMS } from '../../src/server/grpcServer.js';
import { startTestServer } from '../helpers/testServer.js';

test('the server announces an HTTP/2 concurrent-stream bound of admission\'s capacity plus the control calls (it announced none)', async (t) => {
  const { server } = await startTestServer(t, ['--max-active-sequences', '3', '--max-queued-sequences', '5']);
  const session = connect(`http://127.0.0.1:${server.port}`);
  t.after(() => session.close());
  const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => session.once('remoteSettings', resolve));
  assert.equal(settings.maxConcurrentStreams, 3 + 5 + CONTROL_STREAMS);
});
