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

  room(ms: number, signal: AbortSignal): Promise<boolean> {
    if (this.unacked < this.maxUnacked) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.wake = undefined;
        resolve(ok);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal.addEventListener("abort", onAbort, { once: true });
      this.wake = () => {
        if (this.unacked < this.maxUnacked) done(true);
      };
    });
  }

  delivered(seq: number): void {
    if (seq > this.ackedSeq) this.pending.push(seq);
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
