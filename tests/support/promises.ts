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
