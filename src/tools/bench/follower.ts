import type { LatencyRecorder } from "../load/latency.js";

/**
 * What the bench's subscribers have in common, tally's (tally-subscriber.ts)
 * and JetStream's (jetstream-subscriber.ts): each counts every event it
 * receives and checks their order as they come, so that a figure counts
 * only if every subscriber really got everything.
 */

/** What one subscriber saw: plain data, so it crosses to the orchestrator as JSON. */
export interface FollowerReport {
  /** The topic it follows, or "" for every topic. */
  topic: string;
  received: number;
  firstSeq: number;
  lastSeq: number;
  /** Events whose seq was not above the one before: duplicates or reordering. */
  notAscending: number;
  /** Places where seq jumped past the one before + 1; only an unfiltered subscriber must have none. */
  gaps: number;
  /** Sum of the seqs received, checked against the database's: with the count, missing and extra events cannot cancel out. */
  seqSum: number;
  /** Events of another topic than the one it asked for. */
  wrongTopic: number;
  heartbeats: number;
  /** Date.now() when its last event arrived, 0 before any. */
  lastEventAtMs: number;
  /** Seconds from subscribing to holding every event up to the target, when a target was reached. */
  secondsToTarget: number | undefined;
  /** How the subscription ended before the bench closed it, if it did. */
  endedEarly: string | undefined;
}

/** A report before anything arrived: first and last seq 0, nothing counted. */
export function emptyReport(topic: string): FollowerReport {
  return {
    topic,
    received: 0,
    firstSeq: 0,
    lastSeq: 0,
    notAscending: 0,
    gaps: 0,
    seqSum: 0,
    wrongTopic: 0,
    heartbeats: 0,
    lastEventAtMs: 0,
    secondsToTarget: undefined,
    endedEarly: undefined,
  };
}

/** Counts one received seq into a report. */
export function countSeq(r: FollowerReport, seq: number, now: number): void {
  if (r.received === 0) r.firstSeq = seq;
  else if (seq <= r.lastSeq) r.notAscending++;
  else if (seq !== r.lastSeq + 1) r.gaps++;
  if (seq > r.lastSeq) r.lastSeq = seq;
  r.received++;
  r.seqSum += seq;
  r.lastEventAtMs = now;
}

/** Where delivery latencies go; the process swaps the recorder to drop a warm-up's. */
export interface LatencySink {
  recorder: LatencyRecorder | undefined;
}

/** One live subscriber. */
export interface Follower {
  readonly report: FollowerReport;
  /** Resolves once the subscription is in place (tally: its first heartbeat; JetStream: its consumer created). */
  readonly ready: Promise<void>;
  /** Resolves once it holds every event up to `target` (a seq), or rejects if its subscription ends first. */
  reach(target: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The waiting half of reach(): one target at a time, checked by the
 * follower after each delivery. Holds when the subscription started so
 * secondsToTarget covers everything from subscribing on.
 */
export class TargetWatch {
  private target = Infinity;
  private resolve: (() => void) | undefined;
  private reject: ((err: Error) => void) | undefined;
  private readonly startedAt = performance.now();

  constructor(private readonly report: FollowerReport) {}

  /** Sets the target; `reachedNow` says whether what is already received holds it. */
  wait(target: number, reachedNow: () => boolean): Promise<void> {
    this.target = target;
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (this.report.endedEarly !== undefined) this.fail(this.report.endedEarly);
      else this.check(reachedNow);
    });
  }

  /** Called after deliveries: settles the wait once the target is held. */
  check(reachedNow: () => boolean): void {
    if (this.target === Infinity || this.report.secondsToTarget !== undefined || !reachedNow()) return;
    this.report.secondsToTarget = (performance.now() - this.startedAt) / 1000;
    this.resolve?.();
  }

  /** Whether `seq` is at or past the target. */
  holds(seq: number): boolean {
    return seq >= this.target;
  }

  fail(reason: string): void {
    this.report.endedEarly ??= reason;
    this.reject?.(new Error(reason));
  }
}
