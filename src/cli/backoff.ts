import { setTimeout as sleep } from "node:timers/promises";

/** First wait after a lost stream: a restart is usually over in well under a second. */
const firstDelayMs = 100;
/** Longest wait: a server down for minutes is noticed within seconds of its return. */
const maxDelayMs = 5_000;

/**
 * The wait before reconnect attempt `attempt` (1, 2, ...): doubling from
 * 100 ms to 5 s, each drawn from its upper half, so many tails cut by the
 * same restart do not all come back in the same instant.
 */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(attempt - 1, 16));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** Waits `ms`, or less if `signal` aborts first (resolves either way: the caller checks the signal). */
export async function waitUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // Aborted: the caller is shutting down.
  }
}
