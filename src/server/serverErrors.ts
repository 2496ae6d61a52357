/** Errors that only the gRPC edge raises. */
export class DrainingError extends Error {
  override name = 'DrainingError';
  constructor() {
    super('the server is shutting down; retry on another replica');
  }
}

export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor() {
    super('the deadline passed before the sequence finished');
  }
}
