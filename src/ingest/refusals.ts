/** The ingest queue is full: retry after a short wait. */
export class OverloadedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`server is overloaded: ingest queue is full, retry in ${retryAfterSeconds}s`);
  }
}

/** The server is draining for shutdown and takes no new work. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
  }
}
