import type { Durability } from "../../store/types.js";
import type { LatencySummary } from "../load/latency.js";
import type { AckCounts } from "../load/run-record.js";
import type { Scenario } from "./scenarios.js";

/** One run of one scenario: the figures the reports are made of. */
export interface Measurement {
  /** Acknowledged sends per second, from the first send to the last acknowledgement. */
  eventsPerSecond: number;
  /** Requests per second (unary calls, HTTP requests, streams, or transactions for raw runs). */
  callsPerSecond: number;
  elapsedSeconds: number;
  sends: number;
  distinct: number;
  /** Rows in the database after the run. */
  uniqueStored: number;
  /** Duplicates the server counted (Stats duplicate_dropped; the database counter for raw runs). */
  duplicatesReported: number;
  /** Summed per-request answers; raw runs have none. */
  answers?: AckCounts;
  calls: number;
  /** What one latency value times; "delivery": from an event's commit to its arrival at a subscriber. */
  latencyUnit: "call" | "stream" | "transaction" | "delivery";
  latency: LatencySummary;
  statusCodes: Record<string, number>;
  errors: Record<string, number>;
  /** Peak resident memory of the server process (VmHWM); raw runs have no server. */
  serverPeakRssMiB?: number;
  /** Largest anonymous part of it seen while the load ran (RssAnon, sampled every 0.5 s): heaps and caches, not file pages. */
  serverPeakAnonRssMiB?: number;
  /** CPU of the server process while the load ran, % of one core; for raw runs, of the inserting process. */
  serverCpuPercent?: number;
  /** CPU of the load generator while the load ran, % of one core: near 100 means it may be the bottleneck. */
  loaderCpuPercent?: number;
  /**
   * Share of the machine's CPU time the hypervisor took while the load ran
   * (/proc/stat steal), %: on a shared VM this, not the code, can set a run's
   * pace, so runs with very different steal are not comparable.
   */
  hostStealPercent?: number;
  /** Latency runs: the rate offered, events/s. */
  offeredRate?: number;
  /** Growth runs: the rate of each step as the database grew. */
  growth?: GrowthFigures;
  /** Subscriber runs (run-subscribers.ts): what the Subscribers table is made of. */
  subscribers?: SubscriberFigures;
  /** Miscounts and failures: any entry fails the bench. */
  problems: string[];
  /** Warnings and errors the server logged during the run. */
  serverLog: string[];
  notes: string[];
}

export interface GrowthFigures {
  steps: {
    storedBefore: number;
    storedAfter: number;
    sends: number;
    /** Streams of the step, and how they ended. */
    calls: number;
    statusCodes: Record<string, number>;
    errors: Record<string, number>;
    seconds: number;
    eventsPerSecond: number;
    latency: LatencySummary;
  }[];
  firstWindowEventsPerSecond: number;
  lastWindowEventsPerSecond: number;
}

/** The growth figures of a run's steps: the windows are the first and the last step. */
export function growthFigures(steps: GrowthFigures["steps"]): GrowthFigures {
  return { steps, firstWindowEventsPerSecond: steps[0]!.eventsPerSecond, lastWindowEventsPerSecond: steps[steps.length - 1]!.eventsPerSecond };
}

/** What a subscriber run measured, beyond the publishing figures of its Measurement. */
export interface SubscriberFigures {
  /** Ingest runs: one entry per subscriber count, in the order they ran. */
  ingest?: IngestFigure[];
  fanout?: FanoutFigure;
  catchup?: CatchupFigure;
}

/** Publishing with a number of live subscribers following every topic. */
export interface IngestFigure {
  subscribers: number;
  eventsPerSecond: number;
  /** eventsPerSecond over the same run's 0-subscriber rate. */
  ratio: number;
  /** Events stored: what each subscriber received. */
  stored: number;
  /** Seconds from the last publish answered to the last subscriber's last event: how far behind live the subscribers ended. */
  tailSeconds: number;
  /** Share of the stored events the furthest-behind subscriber held as the last publish was answered: 1 is live, far below 1 is served from the database afterwards. */
  liveShare: number;
  /** Stored events over the time from the first publish until every subscriber held all of them. */
  allDeliveredPerSecond: number;
  serverCpuPercent?: number;
  /** CPU of the subscriber process while the load ran, % of one core. */
  subscriberCpuPercent?: number;
  /** CPU of the load generator while the load ran: near 100, the figure may be the load generator's. */
  loaderCpuPercent?: number;
  hostStealPercent?: number;
}

/** One subscriber per topic under a fixed publishing rate. */
export interface FanoutFigure {
  subscribers: number;
  offeredRate: number;
  /** Events all subscribers received together over the measured part and warm-up. */
  delivered: number;
  /** The most events of its topic a subscriber still lacked when the last publish was answered. */
  maxLagAtEnd: number;
  /** Every subscriber received all its topic's events and lagged at most the scenario's keptUpLag at the end. */
  keptUp: boolean;
}

/** One subscriber reading a filled database (or stream) from the start. */
export interface CatchupFigure {
  stored: number;
  seconds: number;
  eventsPerSecond: number;
}

/** A scenario in one durability pass, with all its runs. */
export interface ScenarioResult {
  pass: Durability;
  scenario: Scenario;
  runs: Measurement[];
  /** The run with the median events/s (the lower middle one for an even count). */
  median: Measurement;
  ok: boolean;
}

/**
 * Picks the median run, so the reported row is one real run rather than a
 * blend: by events/s, or for latency and fan-out runs (whose rate is fixed) by p99.
 */
export function summarize(pass: Durability, scenario: Scenario, runs: Measurement[]): ScenarioResult {
  const byP99 = scenario.kind === "latency" || scenario.kind === "fanout";
  const key = byP99 ? (m: Measurement) => m.latency.p99Us : (m: Measurement) => m.eventsPerSecond;
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { pass, scenario, runs, median, ok: runs.every((r) => r.problems.length === 0) };
}
