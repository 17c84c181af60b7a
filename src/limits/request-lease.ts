import { Code, ConnectError, createContextKey, type ContextValues } from "@connectrpc/connect";
import type { HttpRequest, HttpResponse } from "../http/route-table.js";
import { OverloadedError } from "../ingest/refusals.js";
import type { MemoryBudget, Reservation } from "./memory-budget.js";

/** How long a client refused for memory is asked to wait: answers in flight drain in about that time. */
const retryAfterSeconds = 1;

/**
 * How long a stream holding its last message's bytes may wait for room for
 * the next one before it is ended with `unavailable`: many group commits'
 * time, so it only ends streams when memory is really spent.
 */
const heldWaitMs = 2_000;

/**
 * What one HTTP request holds of the memory budget. Every share it takes is
 * given back when the response closes (finished, reset or cut), so nothing a
 * request held outlives it, however it ends; a stream's messages give theirs
 * back earlier, as each one commits (releaseMessage).
 */
export class RequestLease {
  private readonly held = new Set<Reservation>();
  private readonly messages: Reservation[] = [];
  private lastMessage: Reservation | undefined;
  private ended = false;

  constructor(private readonly budget: MemoryBudget) {}

  /**
   * Holds `bytes` until the request ends (or until the returned share is
   * released), or refuses the request (OverloadedError: `unavailable`, retry)
   * when the budget cannot give them now.
   */
  hold(bytes: number): { release(): void } {
    if (bytes > this.budget.limitBytes) {
      throw new ConnectError(`the request needs ${Math.ceil(bytes)} bytes of memory, more than the server's whole budget of ${this.budget.limitBytes}`, Code.ResourceExhausted);
    }
    const reservation = this.budget.tryTake(bytes);
    if (reservation === undefined) throw new OverloadedError(retryAfterSeconds, "the memory budget for requests in flight is spent");
    if (!this.keep(reservation)) return reservation;
    return {
      release: () => {
        this.held.delete(reservation);
        reservation.release();
      },
    };
  }

  /**
   * Waits until the budget can give `bytes`, for a call that holds nothing
   * else while it waits (a subscription between pages), so waiting cannot
   * deadlock; held until released or the request ends.
   */
  async holdWhenRoom(bytes: number, signal: AbortSignal): Promise<{ release(): void }> {
    const reservation = await this.budget.take(Math.min(bytes, this.budget.limitBytes), signal);
    if (!this.keep(reservation)) return reservation;
    return {
      release: () => {
        this.held.delete(reservation);
        reservation.release();
      },
    };
  }

  /**
   * Waits until the budget can give a stream message its share: what it
   * decodes to (`decodedBytes`, given back by releaseMessage once the message
   * has committed) and its own bytes (`wireBytes`, held until the next
   * message's replace them: connect-es's stream readers keep the last
   * message's buffer referenced until the next one passes, however long that
   * takes). Until then the stream is not read, so flow control holds its
   * client back. Both parts are taken at once: a stream holding one part
   * while waiting for the other could wait for itself.
   */
  async holdMessage(decodedBytes: number, wireBytes: number, signal: AbortSignal): Promise<void> {
    // A stream that still holds its last message's bytes must not wait for long: if every stream
    // did, their held bytes could fill the budget with nothing left to give, and none would move.
    const waitFor = this.lastMessage === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(heldWaitMs)]);
    let whole: Reservation;
    try {
      whole = await this.budget.take(decodedBytes + wireBytes, waitFor);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new OverloadedError(retryAfterSeconds, `the memory budget is spent: no room for the stream's next message within ${heldWaitMs / 1000}s`);
    }
    if (!this.keep(whole)) return;
    const wire = whole.split(wireBytes);
    this.held.add(wire);
    this.messages.push(whole);
    const previous = this.lastMessage;
    this.lastMessage = wire;
    if (previous !== undefined) {
      this.held.delete(previous);
      previous.release();
    }
  }

  /** Gives back the oldest message's share: messages of a stream commit in the order they were read. */
  releaseMessage(): void {
    const reservation = this.messages.shift();
    if (reservation === undefined) return;
    this.held.delete(reservation);
    reservation.release();
  }

  /** Gives back everything; called when the response closes. */
  end(): void {
    this.ended = true;
    for (const reservation of this.held) reservation.release();
    this.held.clear();
    this.messages.length = 0;
    this.lastMessage = undefined;
  }

  private keep(reservation: Reservation): boolean {
    if (this.ended) {
      reservation.release();
      return false;
    }
    this.held.add(reservation);
    return true;
  }
}

const leases = new WeakMap<HttpRequest, RequestLease>();

/** Opens the lease of a request as it arrives; it ends when the response closes. */
export function openLease(req: HttpRequest, res: HttpResponse, budget: MemoryBudget): RequestLease {
  const lease = new RequestLease(budget);
  leases.set(req, lease);
  // end() may run more than once; on() costs less than once() on this hot path.
  res.on("close", () => lease.end());
  return lease;
}

/** The lease of a request the server is serving (openLease ran for every one of them). */
export function leaseOf(req: HttpRequest): RequestLease {
  const lease = leases.get(req);
  if (lease === undefined) throw new Error("request served without a memory lease");
  return lease;
}

/** Where an RPC handler finds its request's lease (set by the RPC front door from the request). */
export const leaseKey = createContextKey<RequestLease | undefined>(undefined, { description: "memory lease of the request" });

/** The lease of the call whose context values these are. */
export function leaseIn(values: ContextValues): RequestLease {
  const lease = values.get(leaseKey);
  if (lease === undefined) throw new Error("call served without a memory lease");
  return lease;
}
