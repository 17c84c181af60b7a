import { setImmediate as yieldToIo, setTimeout as sleep } from "node:timers/promises";
import type { Batches } from "./batches.js";

/**
 * When each batch may go out. Without a rate, at once; with one, batch i is
 * due when the events before it have had their share of time, so the rate
 * holds over the whole run rather than per worker. A deadline stops new
 * batches (--duration); batches already sent finish.
 */
export class Schedule {
  private startedAt = 0;

  constructor(
    private readonly batches: Batches,
    /** Events per second, or undefined for as fast as the server answers. */
    private readonly rate: number | undefined,
    /** Seconds after start when no new batch may begin, or undefined for none. */
    private readonly durationSeconds: number | undefined,
  ) {}

  start(): void {
    this.startedAt = performance.now();
  }

  /** When batch i is due (performance.now() milliseconds). */
  due(i: number): number {
    return this.rate === undefined ? this.startedAt : this.startedAt + (this.batches.start(i) / this.rate) * 1000;
  }

  /** Whether the deadline has passed. */
  expired(now = performance.now()): boolean {
    return this.durationSeconds !== undefined && now - this.startedAt >= this.durationSeconds * 1000;
  }

  /** Waits until batch i is due; false when the deadline comes first, and the batch must not be sent. */
  async waitFor(i: number): Promise<boolean> {
    const wait = this.due(i) - performance.now();
    if (wait >= 1) await sleep(Math.floor(wait));
    return !this.expired();
  }
}

/**
 * Closed loop: `concurrency` workers, each sending its next batch when the
 * previous one is answered (as ghz -c does). Batches are taken in order from
 * one counter, so a slow call delays only its own worker.
 */
export async function closedLoop(batches: Batches, concurrency: number, schedule: Schedule, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < batches.count) {
      const i = next++;
      if (!(await schedule.waitFor(i))) return;
      await call(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batches.count) }, worker));
}

/**
 * Open loop: batches go out on schedule whether or not earlier ones have
 * been answered, up to `maxInFlight` at once. This is how latency under a
 * fixed load is measured without coordinated omission: a slow answer does
 * not delay the next request, so it cannot hide behind it. Answers how late
 * against schedule calls went out; a large lag means the rate was not held.
 */
export async function openLoop(
  batches: Batches,
  maxInFlight: number,
  schedule: Schedule,
  call: (i: number) => Promise<void>,
): Promise<{ lagsUs: Float64Array }> {
  const lagsUs = new Float64Array(batches.count);
  // A count and one waiter, not Promise.race over the calls in flight: racing
  // a thousand promises per send costs a thousand reactions each time, which
  // made the loader, not the server, the bottleneck once calls piled up.
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const settled = () => {
    inFlight--;
    wake?.();
  };
  const nextSettled = () => new Promise<void>((resolve) => (wake = resolve));
  let sent = 0;
  for (let i = 0; i < batches.count; i++) {
    if (!(await schedule.waitFor(i))) break;
    // A loop that keeps up with its schedule never sleeps, and without a turn
    // of the event loop no answer is read: calls in flight would only grow.
    await yieldToIo();
    while (inFlight >= maxInFlight) await nextSettled();
    lagsUs[i] = Math.max(0, (performance.now() - schedule.due(i)) * 1000);
    inFlight++;
    call(i).then(settled, settled);
    sent++;
  }
  while (inFlight > 0) await nextSettled();
  return { lagsUs: lagsUs.subarray(0, sent) };
}
