/**
 * Waits for a promise, but no longer than `ms`: a hang fails the test with a
 * description of what was left waiting, instead of running into the test
 * timeout with nothing to go on. A bound, never a pace: no test waits on it
 * when things work.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
