import type { Durability } from "../../store/types.js";
import type { LatencySummary } from "../load/latency.js";
import type { LoadSpec } from "../load/run-load.js";
import type { LoadResult } from "../load/run-record.js";
import type { WorkloadSpec } from "../load/workload.js";
import type { JetStreamJob } from "./jetstream-publish.js";

export type { JetStreamJob } from "./jetstream-publish.js";

/**
 * Messages between the bench orchestrator and its load-generator process.
 * The load generator runs apart from both the server and the orchestrator,
 * so neither's CPU is counted in its rate, and a job is prepared (encoded)
 * in full before the orchestrator starts the clock and its CPU sampling.
 */

/** Publish a workload to a running server. */
export interface LoadJob {
  kind: "load";
  spec: LoadSpec;
  workload: WorkloadSpec;
  batch: number;
  /** How many topics (topicNames), or their names (the fan-out run's t000..t099). */
  topics: number | string[];
  /**
   * "shared": reuse encodings across jobs of the same seed (scenarios send
   * the same events to fresh databases); "fresh": encode for this job only
   * and let it go after (growth's 5M events must not all stay in memory).
   */
  cache: "shared" | "fresh";
}

/** Insert a workload straight into a database in this process: the ceiling. */
export interface RawJob {
  kind: "raw";
  dbPath: string;
  /** tuned: the server's pragmas for this durability; defaults: better-sqlite3's, with WAL. */
  pragmas: "tuned" | "defaults";
  durability: Durability;
  batch: number;
  /** Run in order on one connection, each timed on its own: one for a ceiling, growth's steps for raw growth. */
  workloads: WorkloadSpec[];
  topics: number;
  /** Stop a workload after this many seconds; one fsync per event at batch 1 would otherwise take hours. */
  budgetSeconds: number;
  /** As for LoadJob: ceilings share their events' store forms; growth steps make theirs and let them go. */
  cache: "shared" | "fresh";
}

export type LoaderJob = LoadJob | RawJob | JetStreamJob;

/** What a raw run measured, for one workload. */
export interface RawResult {
  /** Events inserted (fewer than the workload when the budget ran out). */
  sends: number;
  distinct: number;
  /** Transactions committed, one per batch. */
  transactions: number;
  elapsedSeconds: number;
  /** Per-transaction commit time, as ghz would time a call. */
  latency: LatencySummary;
  timeBoxed: boolean;
  /** The pragmas the connection ran with, read back from SQLite. */
  pragmas: Record<string, string | number>;
}

export type ToLoader = { type: "prepare"; job: LoaderJob } | { type: "start" } | { type: "exit" };

export type FromLoader =
  | { type: "prepared" }
  /** Events written to the transport so far. */
  | { type: "progress"; done: number }
  | { type: "load-done"; result: LoadResult }
  /** One result per workload of the job. */
  | { type: "raw-done"; results: RawResult[] }
  | { type: "error"; message: string };
