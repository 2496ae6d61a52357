import { status } from '@grpc/grpc-js';

import { CancelledError, EngineError, type EngineErrorCode } from '../pipeline/errors.js';
import { ServerError, type ServerErrorCode } from './serverErrors.js';

/** Every code a call can end with: the engine's, the edge's, and UNEXPECTED for anything else that was thrown. */
export type ErrorCode = EngineErrorCode | ServerErrorCode | 'UNEXPECTED';

export interface MappedError {
  status: status;
  /** Safe to send: engine and server messages name fields, never internals; internal failures get a generic text. */
  message: string;
  /** The stable code, the `code` label of `stepframe_requests_total` (its status is the `grpc_status` label). */
  code: ErrorCode;
  /** Whether the detail belongs in an error log line (internal failures only). */
  internal: boolean;
}

/**
 * Every code and its status; `null` marks internal failures, which clients see only as INTERNAL
 * with a request id while metrics and logs keep the code. Typed by ErrorCode, so a new engine or
 * server code does not compile until it is mapped here.
 */
const STATUS_OF: Record<ErrorCode, status | null> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  OVERLOADED: status.RESOURCE_EXHAUSTED,
  CANCELLED: status.CANCELLED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  // A lost executor is replaced within seconds: the call is worth retrying, here or on another replica.
  EXECUTOR_LOST: status.UNAVAILABLE,
  BUNDLE_INVALID: null,
  MODEL_FAILURE: null,
  INTERNAL_INVARIANT: null,
  DRAINING: status.UNAVAILABLE,
  STALLED_READER: status.RESOURCE_EXHAUSTED,
  CALL_DEADLINE: status.DEADLINE_EXCEEDED,
  UNEXPECTED: null,
};

/** The one place errors become gRPC statuses. */
export function toGrpcError(error: unknown, requestId: string): MappedError {
  const code: ErrorCode = error instanceof EngineError || error instanceof ServerError ? error.code : 'UNEXPECTED';
  const mapped = STATUS_OF[code];
  if (mapped !== null) return { status: mapped, message: (error as Error).message, code, internal: false };
  return { status: status.INTERNAL, message: `internal error (request id ${requestId}); the details are in the server log`, code, internal: true };
}

/**
 * What a call ended with when its signal fired: the signal's reason (the client left, the deadline
 * passed) when the error is only the engine noticing it, and otherwise the error itself, so an
 * abort that follows a model failure does not hide the failure.
 */
export function endingError(caught: unknown, signal: AbortSignal): unknown {
  if (!signal.aborted) return caught;
  return caught === signal.reason || caught instanceof CancelledError ? signal.reason : caught;
}
