import assert from 'node:assert/strict';
import { test } from 'node:test';

import { status } from '@grpc/grpc-js';

import { BundleError, CancelledError, ExecutorLostError, InvalidArgumentError, ModelFailureError, OverloadedError } from '../../src/pipeline/errors.js';
import { toGrpcError } from '../../src/server/errorStatus.js';
import { DeadlineExceededError, DrainingError } from '../../src/server/serverErrors.js';

test('engine and edge errors map to their status codes in one place', () => {
  const cases: [unknown, status][] = [
    [new InvalidArgumentError('steps', 'bad'), status.INVALID_ARGUMENT],
    [new OverloadedError('full'), status.RESOURCE_EXHAUSTED],
    [new CancelledError(), status.CANCELLED],
    [new DeadlineExceededError(), status.DEADLINE_EXCEEDED],
    [new DrainingError(), status.UNAVAILABLE],
    [new ExecutorLostError('executor 1 exited'), status.UNAVAILABLE],
  ];
  for (const [error, code] of cases) assert.equal(toGrpcError(error, 'r1').code, code, String(error));
});

test('internal failures become INTERNAL without leaking their detail', () => {
  for (const error of [new ModelFailureError('inference failed in /srv/models/unet/model.onnx'), new BundleError('/srv/x'), new TypeError('x is undefined')]) {
    const mapped = toGrpcError(error, 'req-42');
    assert.equal(mapped.code, status.INTERNAL);
    assert.equal(mapped.internal, true);
    assert.doesNotMatch(mapped.message, /srv|undefined/);
    assert.match(mapped.message, /req-42/);
  }
});
