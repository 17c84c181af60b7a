import type { StoredEventRow } from "../store/types.js";
import type { DeliveryWindow } from "./follow.js";

/**
 * max_unacked for one live subscription of a durable consumer: counts the
 * events delivered after the consumer's acknowledged seq and holds delivery
 * back at the bound until an Ack moves the seq past some of them. The
 * stream stays open while it waits (heartbeats go on); nothing is dropped.
 * It holds one number per unacknowledged event, so at most maxUnacked of them.
 */
export class AckWindow implements DeliveryWindow {
  /** Seqs delivered and not yet acknowledged, in order. */
  private pending: number[] = [];
  private first = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly maxUnacked: number,
    private ackedSeq: number,
  ) {}

  /** Events delivered and not yet acknowledged. */
  get unacked(): number {
    return this.pending.length - this.first;
  }

  room(ms: number, signal: AbortSignal): Promise<number> {
    if (this.unacked < this.maxUnacked) return Promise.resolve(this.maxUnacked - this.unacked);
    if (signal.aborted) return Promise.resolve(0);
    return new Promise((resolve) => {
      const done = (room: number) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.wake = undefined;
        resolve(room);
      };
      const onAbort = () => done(0);
      const timer = setTimeout(() => done(0), ms);
      signal.addEventListener("abort", onAbort, { once: true });
      this.wake = () => {
        if (this.unacked < this.maxUnacked) done(this.maxUnacked - this.unacked);
      };
    });
  }

  delivered(rows: readonly StoredEventRow[]): void {
    for (const row of rows) if (row.seq > this.ackedSeq) this.pending.push(row.seq);
  }

  /** The consumer's acknowledged seq moved to `seq` (AckAll): everything delivered up to it is done. */
  acked(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    while (this.first < this.pending.length && this.pending[this.first]! <= seq) this.first++;
    if (this.first > 1024 && this.first * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.first);
      this.first = 0;
    }
    this.wake?.();
  }
}
