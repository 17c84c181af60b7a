import { ConnectError } from "@connectrpc/connect";
/**
 * Lets every promise reaction already queued run (setImmediate runs after the
 * microtask queue drains); no timer is involved. Used only to show that
 * something has NOT happened yet.
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, without leaving a rejection unhandled. */
export function watch<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled, promise };
}

/** A signal that never aborts. */
export const never = new AbortController().signal;

/** The error a call fails with, as a ConnectError, or undefined if it succeeds. */
export async function failureOf(call: () => Promise<unknown>): Promise<ConnectError | undefined> {
  try {
    await call();
    return undefined;
  } catch (err) {
    return ConnectError.from(err);
  }
}

/** Reads a stream to its end: undefined if it ends cleanly, the ConnectError it ends with otherwise. */
export function streamEnd(iterator: AsyncIterator<unknown>): Promise<ConnectError | undefined> {
  return failureOf(async () => {
    while (!(await iterator.next()).done);
  });
}

/** The ConnectError a call is refused with; fails the test if the call succeeds. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const refused = await failureOf(() => call);
  if (refused === undefined) throw new Error("expected the call to be refused");
  return refused;
}
