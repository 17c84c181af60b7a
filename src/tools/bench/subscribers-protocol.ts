import type { LatencySummary } from "../load/latency.js";
import type { FollowerReport } from "./follower.js";

/**
 * Messages between the bench orchestrator and its subscriber process
 * (subscribers.ts). Subscribers run apart from the server, as real ones
 * would, and apart from the load generator, so neither's event loop holds
 * the other back and each one's CPU can be read.
 */

/** Subscribers of tally: one per entry of `topics` ("" follows every topic), spread over `connections` HTTP/2 connections. */
export interface TallySubscribeJob {
  kind: "tally";
  target: string;
  topics: string[];
  connections: number;
  /** new: START_NEW, ready once the first heartbeat says the subscription is in place; beginning: START_BEGINNING from seq 0. */
  start: "new" | "beginning";
  heartbeatMs: number;
  /** Record each event's delay from commit to arrival. */
  latency: boolean;
}

/** Ordered consumers of one JetStream stream, each following every subject on a connection of its own. */
export interface JetStreamSubscribeJob {
  kind: "jetstream";
  url: string;
  stream: string;
  consumers: number;
  start: "new" | "beginning";
}

/** What a subscriber process is asked to subscribe to. */
export type SubscribeJob = TallySubscribeJob | JetStreamSubscribeJob;

/** Orchestrator to subscriber process. */
export type ToSubscribers =
  /** Subscribe; with a target (a seq), time each subscriber from subscribing to holding everything up to it (catch-up). */
  | { type: "start"; job: SubscribeJob; target?: number }
  /** Read how many events each has received now, and optionally start the latency record afresh (after a warm-up). */
  | { type: "mark"; resetLatency: boolean }
  /**
   * Wait until every subscriber holds everything up to `target` (a seq),
   * then close them. A subscriber that is slow is waited for; the wait ends
   * early only when none of them has received anything for `stallMs`, or
   * after `capMs` in all.
   */
  | { type: "finish"; target: number; stallMs: number; capMs: number }
  | { type: "exit" };

/** Subscriber process to orchestrator. */
export type FromSubscribers =
  /** Every subscriber is in place. */
  | { type: "ready" }
  | { type: "marked"; received: number[] }
  /** Events received so far, all subscribers together. */
  | { type: "progress"; received: number }
  /** `gaveUp` says why the wait ended before every subscriber held everything. */
  | { type: "finished"; followers: FollowerReport[]; latency: LatencySummary; gaveUp: string | undefined }
  | { type: "error"; message: string };
