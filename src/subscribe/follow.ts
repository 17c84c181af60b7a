import { Code, ConnectError } from "@connectrpc/connect";
import { setImmediate } from "node:timers/promises";
import type { RequestLease } from "../limits/request-lease.js";
import { eventBytes, type EventPage, type EventQuery, type StoredEventRow } from "../store/types.js";
import type { CommitFeed } from "./commit-feed.js";
import type { SubscriptionFilter } from "./filter.js";

/**
 * What a subscription delivers: events in seq order, a page or part of one
 * at a time (so a front door can write them in one go), or a heartbeat.
 */
export type FollowItem =
  | {
      kind: "events";
      rows: StoredEventRow[];
      /** The rows are the commit feed's, delivered to every live subscriber alike: worth encoding once for all of them. */
      shared: boolean;
    }
  | {
      kind: "heartbeat";
      head: number;
      /** Every committed event up to head has been examined. */
      caughtUp: boolean;
      /** Every matching event up to here has been delivered. */
      cursor: number;
    };

/** Where events come from when memory does not hold them: a page of the database. */
export type PageReader = (query: EventQuery) => Promise<EventPage>;

/** Lets a durable consumer hold delivery back (ack-window.ts); a plain subscription never waits. */
export interface DeliveryWindow {
  /** Resolves with how many events may go now (at least 1), or 0 after `ms` without room (a heartbeat is due). */
  room(ms: number, signal: AbortSignal): Promise<number>;
  delivered(seqs: readonly StoredEventRow[]): void;
}

export interface FollowOptions {
  filter: SubscriptionFilter;
  /** Deliver events with a larger seq. */
  afterSeq: number;
  heartbeatMs: number;
  /** End with resource_exhausted once caught up and then more than this many seqs behind; 0 for never. */
  maxLag: number;
  /** Rows and stored bytes of one database page. */
  pageRows: number;
  pageBytes: number;
  window?: DeliveryWindow;
}

/**
 * Heap a page of events holds while it is delivered, per stored byte: the
 * rows, and each event's encoded message as it is written.
 */
const heldBytesPerStoredByte = 2;

/**
 * A subscription: a cursor that walks the database, then the recent commits,
 * then waits for the next commit, and never holds more than one page.
 *
 * No gap and no duplicate where replay turns into live: the feed counts this
 * subscriber in before its first read, so every commit from then on is kept
 * in memory (commit-feed.ts), and whatever the database read already
 * delivered is skipped because memory is only read after the cursor. When
 * memory has dropped what follows the cursor (a slow reader), the next page
 * comes from the database again; nothing is lost and nothing is dropped.
 *
 * The generator is pulled only as fast as the client reads (every front
 * door waits for the socket to drain before it asks for more), so a slow
 * reader costs one page of memory, held against the request's share of the
 * budget while it is delivered.
 */
export async function* follow(feed: CommitFeed, readPage: PageReader, lease: RequestLease, options: FollowOptions, signal: AbortSignal): AsyncGenerator<FollowItem> {
  const unfollow = feed.follow();
  let cursor = options.afterSeq;
  let caughtUpOnce = false;
  // Whether the events since the last caught-up heartbeat came from the database: reaching the head then is news.
  let replaying = true;
  let quietSince = Date.now();
  try {
    for (;;) {
      if (signal.aborted) return;
      const recent = feed.after(cursor, options.filter, options.pageRows, options.pageBytes);
      let rows: StoredEventRow[];
      let next: number;
      if (recent === undefined) {
        // Everything up to the feed's head had committed before this read began, so a page that
        // found nothing more has examined up to there (an indexed page's cursor stays at its last row).
        const headBefore = feed.head;
        // The store reads synchronously: without a turn of the event loop between pages, a subscription scanning
        // far for a filter that matches little would hold the main thread for every page in a row.
        await setImmediate();
        const page = await readPage({ ...options.filter, afterSeq: cursor, limit: options.pageRows, maxBytes: options.pageBytes });
        rows = page.events;
        next = page.hasMore ? page.nextCursor : Math.max(page.nextCursor, headBefore);
        replaying = true;
      } else {
        rows = recent.rows;
        next = recent.cursor;
      }
      let bytes = 0;
      for (const row of rows) bytes += eventBytes(row);
      const held = rows.length === 0 ? undefined : await lease.holdWhenRoom(bytes * heldBytesPerStoredByte, signal);
      try {
        for (let at = 0; at < rows.length; ) {
          let take = rows.length - at;
          if (options.window !== undefined) {
            let room: number;
            while ((room = await options.window.room(untilHeartbeat(quietSince, options.heartbeatMs), signal)) === 0) {
              if (signal.aborted) return;
              yield { kind: "heartbeat", head: feed.head, caughtUp: false, cursor };
              quietSince = Date.now();
            }
            take = Math.min(take, room);
          }
          const batch = at === 0 && take === rows.length ? rows : rows.slice(at, at + take);
          yield { kind: "events", rows: batch, shared: recent !== undefined };
          quietSince = Date.now();
          at += take;
          cursor = batch.at(-1)!.seq;
          options.window?.delivered(batch);
        }
      } finally {
        held?.release();
      }
      cursor = Math.max(cursor, next);
      if (caughtUpOnce && options.maxLag > 0 && feed.head - cursor > options.maxLag) {
        throw new ConnectError(
          `the subscriber fell ${feed.head - cursor} events behind the newest commit, more than its max_lag of ${options.maxLag}; subscribe again with after_seq ${cursor} to resume`,
          Code.ResourceExhausted,
        );
      }
      if (cursor < feed.head) continue;
      // Nothing more committed: live from here.
      if (replaying) {
        caughtUpOnce = true;
        replaying = false;
        yield { kind: "heartbeat", head: feed.head, caughtUp: true, cursor };
        quietSince = Date.now();
      }
      await feed.waitBeyond(cursor, untilHeartbeat(quietSince, options.heartbeatMs), signal);
      if (feed.head <= cursor && !signal.aborted && Date.now() - quietSince >= options.heartbeatMs) {
        yield { kind: "heartbeat", head: feed.head, caughtUp: true, cursor };
        quietSince = Date.now();
      }
    }
  } finally {
    unfollow();
  }
}

function untilHeartbeat(quietSince: number, heartbeatMs: number): number {
  return Math.max(0, quietSince + heartbeatMs - Date.now());
}
