import { Code, ConnectError } from "@connectrpc/connect";

/** When to ack: after this many printed events, or this long after the first unacked one, whichever comes first. */
export interface AckPacing {
  maxEvents: number;
  maxDelayMs: number;
}

/**
 * An ack per event would double the calls of a fast tail; one every 100
 * events or 200 ms keeps the acked seq close behind what was printed (a
 * crash re-prints at most that much) and far below the server's
 * max_unacked (1,000 by default), so delivery never pauses for acks.
 */
export const defaultAckPacing: AckPacing = { maxEvents: 100, maxDelayMs: 200 };

/**
 * Acknowledges a consumer's printed events in batches, one Ack in flight at
 * a time (acks are cumulative, so only the highest printed seq matters).
 * An Ack refused with `unavailable` (a restart) is tried again on the next
 * round; any other refusal (the consumer was deleted, the token may not
 * ack) goes to `failed`, once, and acking stops.
 */
export class AckBatcher {
  private target = 0n;
  private acked = 0n;
  private unackedEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly ack: (seq: bigint) => Promise<void>,
    private readonly failed: (err: unknown) => void,
    private readonly pacing: AckPacing = defaultAckPacing,
  ) {}

  /** Records that every event up to `seq` was printed (or, from a heartbeat's cursor, needs no printing). */
  printed(seq: bigint, events = 1): void {
    if (this.stopped || seq <= this.target) return;
    this.target = seq;
    this.unackedEvents += events;
    if (this.unackedEvents >= this.pacing.maxEvents) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.pacing.maxDelayMs);
  }

  /** The highest seq the server has confirmed. */
  get ackedSeq(): bigint {
    return this.acked;
  }

  /**
   * Acks whatever is still unacked and waits for it: on exit, what was
   * printed is acked. Rejects if that last Ack fails, so the caller can say so.
   */
  async close(): Promise<void> {
    this.clearTimer();
    await this.inFlight;
    this.clearTimer();
    if (this.stopped) return; // a refusal already reported: another Ack would only be refused again
    this.stopped = true;
    if (this.target > this.acked) {
      await this.ack(this.target);
      this.acked = this.target;
    }
  }

  private flush(): void {
    this.clearTimer();
    if (this.stopped || this.inFlight !== undefined || this.target <= this.acked) return;
    const seq = this.target;
    this.unackedEvents = 0;
    this.inFlight = this.ack(seq).then(
      () => {
        if (seq > this.acked) this.acked = seq;
      },
      (err: unknown) => {
        if (err instanceof ConnectError && err.code === Code.Unavailable) return;
        this.stopped = true;
        this.failed(err);
      },
    );
    void this.inFlight.finally(() => {
      this.inFlight = undefined;
      // What was printed while this Ack was on its way waits for the next round, not for the next event.
      if (!this.stopped && this.target > this.acked) this.timer ??= setTimeout(() => this.flush(), this.pacing.maxDelayMs);
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
