/**
 * Heap a request takes per byte of it on the wire while it is held: the
 * bytes themselves, the decoded events and the records queued for the
 * writer. Measured on 4 MiB messages of 8 decoded and validated at once
 * (heapUsed after a forced GC): 4.2 bytes per wire byte for seed-shaped
 * events (~150-byte payloads), 10.4 for events with empty payloads, where
 * each event's objects outweigh its bytes. The share is taken at the worst.
 */
export const heapBytesPerWireByte = 11;

/**
 * Shares up to this size may pass waiting ones. They are at most a few
 * percent of any budget the settings allow (which holds 11 whole messages),
 * and they end quickly, so a waiting stream still gets its turn.
 */
const smallShareBytes = 64 * 1024;

/** A share of the budget, given back once with release(); releasing again does nothing. */
export interface Reservation {
  readonly bytes: number;
  release(): void;
  /** Moves `bytes` of this share into a share of its own, to be given back apart (this one keeps the rest). */
  split(bytes: number): Reservation;
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

  /**
   * Takes a share now, or answers undefined when the budget cannot give it.
   * A large share does not pass a stream waiting for its own; a small one
   * does if it fits, so small answers (Stats, single-event publishes) go on
   * while a large message waits.
   */
  tryTake(bytes: number): Reservation | undefined {
    const share = this.clamp(bytes);
    if (this.used + share > this.limitBytes) return undefined;
    if (this.waiters.length > 0 && share > smallShareBytes) return undefined;
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
    return new Share(this, bytes);
  }

  /** Called by a share once, when it is given back. */
  giveBack(bytes: number): void {
    this.used -= bytes;
    this.wake();
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.limitBytes) {
      const waiter = this.waiters.shift()!;
      waiter.grant(this.grant(waiter.bytes));
    }
  }
}

/** A share of bytes already counted in the budget's use: a small class, as one is made for every request. */
class Share implements Reservation {
  private held = true;

  constructor(
    private readonly budget: MemoryBudget,
    public bytes: number,
  ) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.budget.giveBack(this.bytes);
  }

  split(part: number): Reservation {
    const moved = this.held ? Math.min(Math.max(0, part), this.bytes) : 0;
    this.bytes -= moved;
    return new Share(this.budget, moved);
  }
}
