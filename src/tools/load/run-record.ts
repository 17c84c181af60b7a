import { LatencyRecorder, type LatencySummary } from "./latency.js";
import { DistinctCounter, type Workload } from "./workload.js";

/** The per-event counts a publish answer reports. */
export interface AckCounts {
  accepted: number;
  duplicates: number;
  conflicts: number;
}

/** Everything a load run observed, plain data so it crosses process boundaries as JSON. */
export interface LoadResult {
  /** Events in acknowledged requests. */
  sends: number;
  /** Distinct events among them: what the server should have stored if the database started empty. */
  distinct: number;
  /** Requests (unary calls, HTTP requests, or whole streams), retries included. */
  calls: number;
  /** Seconds from the first send to the last acknowledgement. */
  elapsedSeconds: number;
  /** What the answers said, summed. */
  accepted: number;
  duplicates: number;
  conflicts: number;
  /** Calls per status name (ghz's statusCodeDistribution). */
  statusCodes: Record<string, number>;
  /** Calls per error text (ghz's errorDistribution). */
  errors: Record<string, number>;
  /** Batches given up on: their events may or may not be stored, so exact counts cannot be checked. */
  failedBatches: number;
  latency: LatencySummary;
  /** Open-loop runs: how far behind schedule calls went out (p99, max), which would mean the rate was not reached. */
  scheduleLagUs?: { p99: number; max: number };
}

/** Collects what a load run observes while it runs. */
export class RunRecord {
  readonly latency = new LatencyRecorder();
  private readonly counter: DistinctCounter;
  private readonly counts: AckCounts = { accepted: 0, duplicates: 0, conflicts: 0 };
  private readonly statusCodes: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};
  private calls = 0;
  failedBatches = 0;

  constructor(workload: Workload) {
    this.counter = new DistinctCounter(workload);
  }

  /**
   * Events written to the transport so far, for progress bars. A stream is
   * acknowledged only at its end, so counting acknowledgements would show
   * nothing until the very last moment.
   */
  written = 0;

  /** Events acknowledged so far. */
  get acked(): number {
    return this.counter.sends;
  }

  /** One finished request: its status, how long it took, and the error text if it failed. */
  call(status: string, latencyUs: number, error?: string): void {
    this.calls++;
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
    if (error !== undefined) this.errors[error] = (this.errors[error] ?? 0) + 1;
    else this.latency.record(latencyUs);
  }

  /** Sends [from, to) were acknowledged. */
  ack(from: number, to: number): void {
    this.counter.mark(from, to);
  }

  /** Adds the counts an answer reported (one per unary call, one per whole stream). */
  count(counts: AckCounts): void {
    this.counts.accepted += counts.accepted;
    this.counts.duplicates += counts.duplicates;
    this.counts.conflicts += counts.conflicts;
  }

  result(elapsedSeconds: number): LoadResult {
    return {
      sends: this.counter.sends,
      distinct: this.counter.distinct,
      calls: this.calls,
      elapsedSeconds,
      ...this.counts,
      statusCodes: { ...this.statusCodes },
      errors: { ...this.errors },
      failedBatches: this.failedBatches,
      latency: this.latency.summary(),
    };
  }
}
