/** Stable machine codes for everything the engine can fail with; the server maps each to one gRPC status. */
export type EngineErrorCode =
  | 'INVALID_ARGUMENT'
  | 'OVERLOADED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED'
  | 'BUNDLE_INVALID'
  | 'MODEL_FAILURE'
  | 'EXECUTOR_LOST'
  | 'INTERNAL_INVARIANT';

/** Base class: `code` is stable and safe to show; `message` names the offending field or file. */
export class EngineError extends Error {
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** A request value outside what the engine or bundle supports; `field` names it. */
export class InvalidArgumentError extends EngineError {
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `${field}: ${message}`, options);
    this.name = 'InvalidArgumentError';
    this.field = field;
  }
}

/** A bundle folder that does not meet the contract in docs/model-bundle.md; the message names the file and tensor. */
export class BundleError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUNDLE_INVALID', message, options);
    this.name = 'BundleError';
  }
}

/** The work was abandoned because its AbortSignal fired. */
export class CancelledError extends EngineError {
  constructor(message = 'the sequence was cancelled') {
    super('CANCELLED', message);
    this.name = 'CancelledError';
  }
}

/** Admission control refused new work. */
export class OverloadedError extends EngineError {
  constructor(message: string) {
    super('OVERLOADED', message);
    this.name = 'OverloadedError';
  }
}

/** An ONNX Runtime call failed; the cause holds the runtime's message for the logs, not for clients. */
export class ModelFailureError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_FAILURE', message, options);
    this.name = 'ModelFailureError';
  }
}

/** The executor running a call ended (a crash, an out-of-memory kill); it is being replaced, so a retry can succeed. */
export class ExecutorLostError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EXECUTOR_LOST', message, options);
    this.name = 'ExecutorLostError';
  }
}

/**
 * The engine broke one of its own rules (a scheduler stepped out of order, noise of the wrong size):
 * a bug, not the client's request, so it is INTERNAL to clients and logged with its detail.
 */
export class InternalInvariantError extends EngineError {
  constructor(message: string) {
    super('INTERNAL_INVARIANT', message);
    this.name = 'InternalInvariantError';
  }
}

/** Throws the signal's reason as a CancelledError when it has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof EngineError ? signal.reason : new CancelledError();
  }
}
