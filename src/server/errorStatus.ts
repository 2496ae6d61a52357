import { status } from '@grpc/grpc-js';

import { EngineError, type EngineErrorCode } from '../pipeline/errors.js';
import { DeadlineExceededError, DrainingError, StalledReaderError } from './serverErrors.js';

export interface MappedError {
  code: status;
  /** Safe to send: engine messages name fields, never internals; anything else becomes generic. */
  message: string;
  /** The label used in metrics (`stepframe_requests_total{code=...}`). */
  label: string;
  /** Whether the detail belongs in an error log line (internal failures only). */
  internal: boolean;
}

/**
 * Every engine code and its status; `null` marks internal failures, which clients see only as
 * INTERNAL with a request id. Typed by EngineErrorCode, so a new code does not compile until it is
 * mapped here.
 */
const ENGINE_CODES: Record<EngineErrorCode, status | null> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  OVERLOADED: status.RESOURCE_EXHAUSTED,
  CANCELLED: status.CANCELLED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  // A lost executor is replaced within seconds: the call is worth retrying, here or on another replica.
  EXECUTOR_LOST: status.UNAVAILABLE,
  BUNDLE_INVALID: null,
  MODEL_FAILURE: null,
};

/** The one place errors become gRPC statuses. */
export function toGrpcError(error: unknown, requestId: string): MappedError {
  if (error instanceof DrainingError) return mapped(status.UNAVAILABLE, error.message);
  if (error instanceof DeadlineExceededError) return mapped(status.DEADLINE_EXCEEDED, error.message);
  if (error instanceof StalledReaderError) return mapped(status.RESOURCE_EXHAUSTED, error.message);
  if (error instanceof EngineError) {
    const code = ENGINE_CODES[error.code];
    if (code !== null) return mapped(code, error.message);
  }
  return { ...mapped(status.INTERNAL, `internal error (request id ${requestId}); the details are in the server log`), internal: true };
}

function mapped(code: status, message: string): MappedError {
  return { code, message, label: status[code], internal: false };
}
