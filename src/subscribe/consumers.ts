import { Code, ConnectError } from "@connectrpc/connect";
import { quoted } from "../answers/quote.js";
import type { Caller } from "../auth/caller.js";
import type { EventStore, ConsumerPage, ConsumerRecord } from "../store/types.js";
import { AckWindow } from "./ack-window.js";
import type { CommitFeed } from "./commit-feed.js";
import { describeFilter, sameFilter, type SubscriptionFilter } from "./filter.js";

/** A consumer name: short, and safe in a URL, a shell and a log line. */
const consumerName = /^[A-Za-z0-9._-]{1,128}$/;

/** Where a subscription asked to start. */
export type StartPoint = { kind: "after"; seq: number } | { kind: "beginning" } | { kind: "new" } | { kind: "default" };

/** A live subscription on a durable consumer, as the Subscribe handler drives it. */
export interface ConsumerLease {
  /** Deliver events after this seq. */
  afterSeq: number;
  window: AckWindow;
  /** Aborted when a newer subscription takes the consumer over, or the consumer is deleted. */
  ended: AbortSignal;
  /** Lets the consumer go; the subscription is over. */
  detach(): void;
}

interface Live {
  window: AckWindow;
  end: AbortController;
}

/** Refuses a name that is not a consumer name, as invalid_argument naming the field. */
export function checkConsumerName(name: string, field: string): void {
  if (!consumerName.test(name)) {
    throw new ConnectError(`${field} ${quoted(name)} is not a consumer name: 1-128 characters of A-Z a-z 0-9 . _ -`, Code.InvalidArgument);
  }
}

/**
 * Durable consumers: a name, the filter it was created with, and the seq up
 * to which it acknowledged (AckAll: one number per consumer, moved forward
 * by each Ack, so the cursor is a single durable row, an ack costs one
 * update, and "resume after the acknowledged seq" needs no per-event state;
 * what a consumer saw but did not acknowledge is delivered again, so
 * delivery is at least once). One subscription per consumer is live at a
 * time on this server: a newer one takes over, so a client that restarts
 * after a crash is not locked out by its own half-dead stream.
 */
export class DurableConsumers {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly store: EventStore,
    private readonly feed: CommitFeed,
  ) {}

  /**
   * Opens a subscription on `name`, creating the consumer with `filter` and
   * the start point as its cursor if it is new. Without a start point it
   * resumes after the acknowledged seq.
   */
  async attach(name: string, filter: SubscriptionFilter, start: StartPoint, maxUnacked: number, caller: Caller): Promise<ConsumerLease> {
    const initial = startSeq(start, this.feed.head, 0);
    const { record } = await this.store.createConsumer({ name, filter, ackedSeq: initial, createdAt: new Date().toISOString() });
    if (!sameFilter(record.filter, filter)) {
      // Say what the consumer follows only to a caller who may read it.
      caller.authorizeConsumer(name, record.filter, "Subscribe");
      throw new ConnectError(
        `consumer ${quoted(name)} follows ${describeFilter(record.filter)}, not ${describeFilter(filter)}; subscribe with its filters, or delete it first`,
        Code.FailedPrecondition,
      );
    }
    this.live.get(name)?.end.abort(new ConnectError(`consumer ${quoted(name)} was taken over by a newer subscription`, Code.Aborted));
    const afterSeq = startSeq(start, this.feed.head, record.ackedSeq);
    const live: Live = { window: new AckWindow(maxUnacked, record.ackedSeq), end: new AbortController() };
    this.live.set(name, live);
    return {
      afterSeq,
      window: live.window,
      ended: live.end.signal,
      detach: () => {
        if (this.live.get(name) === live) this.live.delete(name);
      },
    };
  }

  /** The consumer, or not_found. */
  async get(name: string): Promise<ConsumerRecord> {
    const record = await this.store.consumer(name);
    if (record === undefined) throw notFound(name);
    return record;
  }

  /** Acknowledges up to `seq`, durably, and lets the live subscription deliver again if it was held back. */
  async ack(name: string, seq: number): Promise<ConsumerRecord> {
    const head = Math.max(this.feed.head, await this.store.head());
    if (seq > head) throw new ConnectError(`seq ${seq} is beyond the newest committed event (${head}); acknowledge only what was delivered`, Code.InvalidArgument);
    const record = await this.store.ack(name, seq);
    if (record === undefined) throw notFound(name);
    this.live.get(name)?.window.acked(record.ackedSeq);
    return record;
  }

  /** Forgets the consumer and ends its live subscription. */
  async delete(name: string): Promise<ConsumerRecord> {
    const record = await this.store.deleteConsumer(name);
    if (record === undefined) throw notFound(name);
    this.live.get(name)?.end.abort(new ConnectError(`consumer ${quoted(name)} was deleted`, Code.Aborted));
    this.live.delete(name);
    return record;
  }

  list(after: string, limit: number): Promise<ConsumerPage> {
    return this.store.consumers(after, limit);
  }

  /** Live subscriptions on the consumer on this server: 0 or 1. */
  subscribers(name: string): number {
    return this.live.has(name) ? 1 : 0;
  }
}

/** The seq a start point delivers after; `resumeAt` for the default (the consumer's cursor, or 0). */
export function startSeq(start: StartPoint, head: number, resumeAt: number): number {
  switch (start.kind) {
    case "after":
      return start.seq;
    case "beginning":
      return 0;
    case "new":
      return head;
    case "default":
      return resumeAt;
  }
}

function notFound(name: string): ConnectError {
  return new ConnectError(`no consumer named ${quoted(name)}`, Code.NotFound);
}
