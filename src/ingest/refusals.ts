/** The server cannot take the request now (the ingest queue is full, the memory budget is spent): retry after a short wait. */
export class OverloadedError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    reason = "ingest queue is full",
  ) {
    super(`server is overloaded: ${reason}, retry in ${retryAfterSeconds}s`);
  }
}

/** The server is draining for shutdown and takes no new work. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
  }
}
