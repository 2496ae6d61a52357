/** Stable machine codes for the failures only the gRPC edge raises (the engine's are EngineErrorCode). */
export type ServerErrorCode = 'DRAINING' | 'STALLED_READER' | 'CALL_DEADLINE';

/** Base class of the edge's own errors: `code` is stable and safe to show, like an engine error's. */
export class ServerError extends Error {
  readonly code: ServerErrorCode;

  constructor(code: ServerErrorCode, message: string) {
    super(message);
    this.name = 'ServerError';
    this.code = code;
  }
}

/** The server is loading or shutting down: the call is refused so that a client retries elsewhere. */
export class DrainingError extends ServerError {
  constructor() {
    super('DRAINING', 'the server is shutting down; retry on another replica');
    this.name = 'DrainingError';
  }
}

/** A client that read nothing for too long: its stream is ended so abandoned streams do not live forever. */
export class StalledReaderError extends ServerError {
  constructor(seconds: number, waiting: number) {
    super('STALLED_READER', `the client read nothing for ${seconds} s while ${waiting} message(s) waited to be sent; the stream was ended (--max-stall-s)`);
    this.name = 'StalledReaderError';
  }
}

/** The call's own deadline passed: the server stops the work rather than compute for nobody. */
export class DeadlineExceededError extends ServerError {
  constructor() {
    super('CALL_DEADLINE', 'the deadline passed before the sequence finished');
    this.name = 'DeadlineExceededError';
  }
}
