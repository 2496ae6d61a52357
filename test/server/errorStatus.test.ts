import assert from 'node:assert/strict';
import { test } from 'node:test';

import { status } from '@grpc/grpc-js';

import { BundleError, CancelledError, ExecutorLostError, InvalidArgumentError, ModelFailureError, OverloadedError } from '../../src/pipeline/errors.js';
import { endingError, toGrpcError } from '../../src/server/errorStatus.js';
import { DeadlineExceededError, DrainingError, StalledReaderError } from '../../src/server/serverErrors.js';

test('engine and edge errors map to their status and keep their own code', () => {
  const cases: [unknown, status, string][] = [
    [new InvalidArgumentError('steps', 'bad'), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
    [new OverloadedError('full'), status.RESOURCE_EXHAUSTED, 'OVERLOADED'],
    [new StalledReaderError(0.5, 2), status.RESOURCE_EXHAUSTED, 'STALLED_READER'],
    [new CancelledError(), status.CANCELLED, 'CANCELLED'],
    [new DeadlineExceededError(), status.DEADLINE_EXCEEDED, 'CALL_DEADLINE'],
    [new DrainingError(), status.UNAVAILABLE, 'DRAINING'],
    [new ExecutorLostError('executor 1 exited'), status.UNAVAILABLE, 'EXECUTOR_LOST'],
  ];
  for (const [error, expected, code] of cases) {
    const mapped = toGrpcError(error, 'r1');
    assert.deepEqual([mapped.status, mapped.code, mapped.internal], [expected, code, false], String(error));
    assert.equal(mapped.message, (error as Error).message);
  }
});

test('internal failures become INTERNAL without their detail, and stay told apart by code', () => {
  const cases: [Error, string][] = [
    [new ModelFailureError('inference failed in /srv/models/unet/model.onnx'), 'MODEL_FAILURE'],
    [new BundleError('/srv/x'), 'BUNDLE_INVALID'],
    [new TypeError('x is undefined'), 'UNEXPECTED'],
  ];
  for (const [error, code] of cases) {
    const mapped = toGrpcError(error, 'req-42');
    assert.deepEqual([mapped.status, mapped.code, mapped.internal], [status.INTERNAL, code, true]);
    assert.doesNotMatch(mapped.message, /srv|undefined/);
    assert.match(mapped.message, /req-42/);
  }
});

test('an abort stands for the cancellation it caused, never for a failure before it', () => {
  const controller = new AbortController();
  const failure = new ModelFailureError('unet failed');
  assert.equal(endingError(failure, controller.signal), failure, 'nothing aborted: the error itself');
  const deadline = new DeadlineExceededError();
  controller.abort(deadline);
  assert.equal(endingError(new CancelledError(), controller.signal), deadline, 'the engine noticing the abort: the abort reason');
  assert.equal(endingError(deadline, controller.signal), deadline);
  assert.equal(endingError(failure, controller.signal), failure, 'a model failure that the deadline followed stays a failure');
});
