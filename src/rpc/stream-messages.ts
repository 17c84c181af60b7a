/**
 * Reads a stream's messages until it ends or the handler is aborted (client
 * gone, or the server draining for shutdown), so a stream whose client went
 * quiet cannot hold a shutdown open.
 */
export async function* untilAborted<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await nextOrAbort(iterator, signal);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: an async generator's return() queues behind a pending next(),
    // which may never settle when the client went quiet.
    void iterator.return?.()?.catch(() => undefined);
  }
}

/**
 * The iterator's next result, or a rejection when the signal aborts first.
 * Each call adds and removes its own abort listener: racing every next()
 * against one long-lived promise instead kept a reaction, and with it every
 * message of the stream, alive until the stream ended (memory grew with
 * stream length).
 */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  const reason = () => (signal.reason instanceof Error ? signal.reason : new Error("aborted"));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
