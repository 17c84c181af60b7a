import type { Caller } from "../auth/caller.js";
import type { RequestLease } from "../limits/request-lease.js";
import type { EventStore } from "../store/types.js";
import type { CommitFeed } from "./commit-feed.js";
import type { DurableConsumers } from "./consumers.js";
import { follow, type FollowItem } from "./follow.js";
import { startSeq } from "./consumers.js";
import type { SubscriptionFilter } from "./filter.js";
import type { SubscriptionRequest } from "./request.js";

/**
 * Rows of one catch-up page. 1000 rows read in a few milliseconds of the
 * main thread (the same bound as an Events page), so catch-up reads never
 * stall other requests for long.
 */
const pageRows = 1000;

/**
 * Stored bytes of one subscription page at most (--max-page-bytes if lower).
 * A page is read, encoded and queued on its stream whole, so each
 * subscription that catches up holds about three times this at once; with 20
 * subscribers catching up together, 1 MiB pages peaked at ~420 MiB RSS, and
 * a quarter of that still fills a stream's 256 KiB window per write.
 */
const maxSubscriptionPageBytes = 256 * 1024;

/**
 * Subscriptions as every front door opens them (Subscribe, GET
 * /events/stream): a cursor over the store and the commit feed, attached to
 * its durable consumer when it names one. Memory per subscription: one page
 * (at most 256 KiB of stored events, held against the memory budget while it
 * is delivered), a few hundred bytes of state, and, for a durable
 * consumer, 8 bytes per unacknowledged event (max_unacked).
 */
export class Subscriptions {
  private readonly pageBytes: number;

  constructor(
    private readonly feed: CommitFeed,
    private readonly store: EventStore,
    readonly consumers: DurableConsumers,
    maxPageBytes: number,
  ) {
    this.pageBytes = Math.min(maxPageBytes, maxSubscriptionPageBytes);
  }

  /** The newest committed seq. */
  get head(): number {
    return this.feed.head;
  }

  /** Matching events committed after `afterSeq`, examining at most `cap` stored events. */
  lag(filter: SubscriptionFilter, afterSeq: number, cap: number): Promise<{ count: number; capped: boolean }> {
    return this.store.countAfter(filter, afterSeq, cap);
  }

  /**
   * The subscription's items until `signal` aborts, a newer subscription
   * takes its consumer over, or it fails. The front door has authorized the
   * request's filter; `caller` is asked again about a consumer's stored one.
   */
  async *open(request: SubscriptionRequest, caller: Caller, lease: RequestLease, signal: AbortSignal): AsyncGenerator<FollowItem> {
    const base = { filter: request.filter, heartbeatMs: request.heartbeatMs, maxLag: request.maxLag, pageRows, pageBytes: this.pageBytes };
    const readPage = (query: Parameters<EventStore["page"]>[0]) => this.store.page(query);
    if (request.consumer === undefined) {
      yield* follow(this.feed, readPage, lease, { ...base, afterSeq: startSeq(request.start, this.feed.head, 0) }, signal);
      return;
    }
    const consumer = await this.consumers.attach(request.consumer, request.filter, request.start, request.maxUnacked, caller);
    const both = AbortSignal.any([signal, consumer.ended]);
    try {
      yield* follow(this.feed, readPage, lease, { ...base, afterSeq: consumer.afterSeq, window: consumer.window }, both);
      // Taken over or deleted: end with that reason rather than quietly.
      if (consumer.ended.aborted && !signal.aborted) throw consumer.ended.reason;
    } finally {
      consumer.detach();
    }
  }
}
