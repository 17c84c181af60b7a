/**
 * Heap a request takes per byte of it on the wire, while it is held: the
 * bytes themselves, the decoded events (JavaScript strings and objects are
 * several times their encoding) and the records queued for the writer.
 * Measured on 4 MiB PublishStream messages of seed-shaped events: see the
 * README's "Memory budget".
 */
export const decodedBytesPerWireByte = 4;

/** A share of the budget, given back once with release(); releasing again does nothing. */
export interface Reservation {
  readonly bytes: number;
  release(): void;
}

interface Waiter {
  bytes: number;
  grant: (reservation: Reservation) => void;
}

/**
 * The one memory budget: every place that holds bytes on behalf of a client
 * (a request being read and decoded until its events commit, an answer being
 * written) takes its share first. A share either fits now (tryTake) or is
 * waited for in arrival order (take), so a stream that cannot get one stops
 * being read and flow control holds its client back; nothing grows past the
 * limit. A share larger than the whole budget is clamped to it, so it waits
 * for an empty budget instead of forever.
 */
export class MemoryBudget {
  private used = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limitBytes: number) {}

  /** Bytes held now, for Stats and the abuse tests. */
  get usedBytes(): number {
    return this.used;
  }

  /** Takes a share now, or answers undefined when the budget cannot give it (or others wait first). */
  tryTake(bytes: number): Reservation | undefined {
    const share = this.clamp(bytes);
    if (this.waiters.length > 0 || this.used + share > this.limitBytes) return undefined;
    return this.grant(share);
  }

  /** Waits for a share; rejects with the signal's reason if it is aborted first. */
  take(bytes: number, signal: AbortSignal): Promise<Reservation> {
    const now = this.tryTake(bytes);
    if (now !== undefined) return Promise.resolve(now);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: this.clamp(bytes),
        grant: (reservation) => {
          signal.removeEventListener("abort", onAbort);
          resolve(reservation);
        },
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal.reason);
        // The head may have been holding back smaller shares behind it.
        this.wake();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private clamp(bytes: number): number {
    return Math.min(Math.max(0, Math.ceil(bytes)), this.limitBytes);
  }

  private grant(bytes: number): Reservation {
    this.used += bytes;
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.used -= bytes;
        this.wake();
      },
    };
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.limitBytes) {
      const waiter = this.waiters.shift()!;
      waiter.grant(this.grant(waiter.bytes));
    }
  }
}
