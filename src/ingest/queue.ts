import { OverloadedError, ShuttingDownError } from "./refusals.js";
import type { AppendResult, EventRecord, EventStore } from "../store/types.js";

/** Bounds of the work accepted but not yet committed. */
export interface QueueLimits {
  maxEvents: number;
  maxBytes: number;
}

/**
 * Seconds a refused unary caller is told to wait. A group commit takes
 * milliseconds, so one second is ample for the queue to drain, and short
 * enough that clients do not idle.
 */
const retryAfterSeconds = 1;

interface RoomWaiter {
  events: number;
  bytes: number;
  grant: () => void;
  refuse: (err: Error) => void;
}

/**
 * The bounded hand-over between handlers and the writer. Every batch holds a
 * reservation of events and bytes from submission until its commit answers,
 * so memory is bounded by the limits however many clients push.
 *
 * Unary callers are refused at once when there is no room (they get
 * `unavailable` with a retry hint); stream handlers wait for room instead,
 * and while they wait they do not read, so HTTP/2 flow control slows the
 * client down.
 */
export class IngestQueue {
  private events = 0;
  private bytes = 0;
  private readonly waiters: RoomWaiter[] = [];
  private closing = false;
  private drained: (() => void) | undefined;
  private closed: Promise<void> | undefined;
  /** Batches refused for lack of room since start, for Stats. */
  rejectedEvents = 0;

  constructor(
    private readonly store: Pick<EventStore, "append">,
    private readonly limits: QueueLimits,
  ) {}

  /** Events and bytes accepted but not yet committed. */
  get depth(): { events: number; bytes: number } {
    return { events: this.events, bytes: this.bytes };
  }

  /** Hands a batch to the writer now, or refuses with OverloadedError when the queue is full. */
  submit(records: EventRecord[], bytes: number): Promise<AppendResult> {
    if (this.closing) return Promise.reject(new ShuttingDownError());
    if (this.waiters.length > 0 || !this.hasRoom(records.length, bytes)) {
      this.rejectedEvents += records.length;
      return Promise.reject(new OverloadedError(retryAfterSeconds));
    }
    this.reserve(records.length, bytes);
    return this.appendReserved(records, bytes);
  }

  /**
   * Waits until the batch fits, then hands it to the writer. Resolves once the
   * batch is queued (so the caller may read its next message); the inner
   * promise resolves when the batch has committed. Waiters are served in order.
   */
  async submitWhenRoom(records: EventRecord[], bytes: number, signal: AbortSignal): Promise<{ committed: Promise<AppendResult> }> {
    if (this.closing) throw new ShuttingDownError();
    if (this.waiters.length === 0 && this.hasRoom(records.length, bytes)) {
      this.reserve(records.length, bytes);
    } else {
      await this.waitForRoom(records.length, bytes, signal);
    }
    return { committed: this.appendReserved(records, bytes) };
  }

  /** Refuses new work, fails waiting streams, and resolves when every accepted batch has answered; the same promise on every call. */
  close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiters.splice(0)) waiter.refuse(new ShuttingDownError());
    this.closed ??= this.events === 0 ? Promise.resolve() : new Promise((resolve) => (this.drained = resolve));
    return this.closed;
  }

  private hasRoom(events: number, bytes: number): boolean {
    // An empty queue takes any batch, so one batch larger than the byte bound cannot wait forever.
    if (this.events === 0) return true;
    return this.events + events <= this.limits.maxEvents && this.bytes + bytes <= this.limits.maxBytes;
  }

  private reserve(events: number, bytes: number): void {
    this.events += events;
    this.bytes += bytes;
  }

  /** Resolves with the room already reserved for this waiter. */
  private waitForRoom(events: number, bytes: number, signal: AbortSignal): Promise<void> {
    // A stream that is already over must not take a place in line, nor room later.
    if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at < 0) return;
        this.waiters.splice(at, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
        this.grantWaiters();
      };
      const waiter: RoomWaiter = {
        events,
        bytes,
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        refuse: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      this.waiters.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private appendReserved(records: EventRecord[], bytes: number): Promise<AppendResult> {
    const release = () => {
      this.events -= records.length;
      this.bytes -= bytes;
      this.grantWaiters();
      if (this.events === 0) this.drained?.();
    };
    const committed = this.store.append(records);
    committed.then(release, release);
    return committed;
  }

  /** Grants waiters in order while they fit, reserving their room as they are granted. */
  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.hasRoom(this.waiters[0]!.events, this.waiters[0]!.bytes)) {
      const waiter = this.waiters.shift()!;
      this.reserve(waiter.events, waiter.bytes);
      waiter.grant();
    }
  }
}
