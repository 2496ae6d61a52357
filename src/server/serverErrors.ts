/** Errors that only the gRPC edge raises. */
export class DrainingError extends Error {
  override name = 'DrainingError';
  constructor() {
    super('the server is shutting down; retry on another replica');
  }
}

/** A client that read nothing for too long: its stream is ended so abandoned streams do not live forever. */
export class StalledReaderError extends Error {
  override name = 'StalledReaderError';
  constructor(seconds: number, waiting: number) {
    super(`the client read nothing for ${seconds} s while ${waiting} image(s) waited to be sent; the stream was ended (--max-stall-s)`);
  }
}

export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor() {
    super('the deadline passed before the sequence finished');
  }
}
