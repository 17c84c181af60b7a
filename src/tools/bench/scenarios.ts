import type { Transport } from "../load/batches.js";
import { uniqueCount } from "../load/workload.js";

/**
 * What the bench runs (GitHub issue #3), at full size and --quick. Every
 * scenario sends the same kind of events (4 topics, 4 sources, UUID ids, a
 * ~150-byte payload, 20% re-sends shuffled in) to a fresh database, so each
 * one's counts can be checked exactly.
 */

interface Common {
  /** Stable name: --only selects by it, report files are named after it. */
  id: string;
  /** What the report calls it. */
  label: string;
}

/** Events straight into the schema in one process: the ceiling everything else is compared with. */
export interface RawScenario extends Common {
  kind: "raw";
  pragmas: "tuned" | "defaults";
  batch: number;
  sends: number;
  /** Seconds after which the run stops and reports the rate so far (batch 1 fsyncs per event). */
  budgetSeconds: number;
  /** Fill one database in growth's steps instead (`sends` is then their total): how SQLite alone slows as it grows. */
  growth?: GrowthShape;
}

/** Closed-loop publishing through the server. */
export interface LoadScenario extends Common {
  kind: "load";
  transport: Transport;
  batch: number;
  concurrency: number;
  sends: number;
  /** Sends of the same load before the measured ones, on the same server (0 for none). */
  warmupSends: number;
  /** tally, or the stub that reads each request and answers at once (stub-server.ts): the floor of the measurement itself. */
  against: "tally" | "stub";
}

/** Single-event unary Publish at a fixed share of the rate `calibratedBy` reached, open loop. */
export interface LatencyScenario extends Common {
  kind: "latency";
  /** tally, or the stub that answers at once and stores nothing (stub-server.ts): the floor of the measurement itself. */
  against: "tally" | "stub";
  transport: "grpc";
  batch: 1;
  calibratedBy: string;
  /** Share of the calibration rate to offer. */
  share: number;
  durationSeconds: number;
  /** Seconds of the same load on the fresh server before the measured part. */
  warmupSeconds: number;
  /** Calls in flight at most; far above what the rate needs, so the schedule is never held back. */
  maxInFlight: number;
}

/** One database filled to `stored` events; the rate over its first and last `window` events. */
export interface GrowthShape {
  stored: number;
  window: number;
  /** Stored events per step between the windows; each step is encoded before it is sent. */
  stepStored: number;
}

/** Growth through the server, by streams. */
export interface GrowthScenario extends Common, GrowthShape {
  kind: "growth";
  transport: "grpc-stream";
  batch: number;
  concurrency: number;
}

/** Where a subscriber scenario publishes and subscribes: tally, or NATS JetStream side by side (jetstream.ts). */
export type SubscriberSystem = "tally" | "jetstream";

/**
 * The headline stream shape with 0, 1 and 10 live subscribers following
 * every topic, each count on a fresh server in the same run, so the ratios
 * to the 0-subscriber rate come from runs minutes apart, not hours.
 */
export interface SubscriberIngestScenario extends Common {
  kind: "subscriber-ingest";
  system: SubscriberSystem;
  batch: number;
  concurrency: number;
  /** Sends per subscriber count. */
  sends: number;
  subscriberCounts: number[];
}

/** One subscriber per topic while producers publish at a fixed rate, open loop: delivery latency from commit to subscriber. */
export interface FanoutScenario extends Common {
  kind: "fanout";
  topics: number;
  /** Events per second offered, open loop. */
  rate: number;
  /** Events per unary Publish: rate / batch calls per second. */
  batch: number;
  durationSeconds: number;
  /** Seconds of the same load before the measured part, its latencies not recorded. */
  warmupSeconds: number;
  /** A subscriber kept up when, as the last publish was answered, at most this many events of its topic were still to come. */
  keptUpLag: number;
}

/** A database (or stream) filled untimed, then one subscriber from the start reading all of it. */
export interface CatchupScenario extends Common {
  kind: "catchup";
  system: SubscriberSystem;
  stored: number;
  /** The fill's stream shape. */
  batch: number;
  concurrency: number;
}

export type SubscriberScenario = SubscriberIngestScenario | FanoutScenario | CatchupScenario;

export type Scenario = RawScenario | LoadScenario | LatencyScenario | GrowthScenario | SubscriberScenario;

/** Whether a scenario is one of the subscriber scenarios (run-subscribers.ts, report/subscribers.ts). */
export function isSubscriberScenario(s: Scenario): s is SubscriberScenario {
  return s.kind === "subscriber-ingest" || s.kind === "fanout" || s.kind === "catchup";
}

/** Whether a scenario runs against NATS JetStream: it needs a NATS server, and tally's durability pass does not change it. */
export function usesJetStream(s: Scenario): boolean {
  return (s.kind === "subscriber-ingest" || s.kind === "catchup") && s.system === "jetstream";
}

/** Whether a scenario ran against a floor's stub (stub-server.ts) rather than tally: it measures the load generator, not a transport of tally's. */
export function againstStub(s: Scenario): boolean {
  return (s.kind === "load" || s.kind === "latency") && s.against === "stub";
}

/** Share of sends that are re-sends, in every scenario. */
export const dupRate = 0.2;

interface Sizes {
  streamBatches: number[];
  streamConcurrency: number[];
  streamSends: number;
  unaryOneSends: number;
  unaryOneWarmupSends: number;
  unaryBatchSends: number;
  jsonBatchSends: number;
  restOneSends: number;
  restOneWarmupSends: number;
  rawBudgetSeconds: number;
  latencySeconds: number;
  latencyWarmupSeconds: number;
  growthStored: number;
  growthWindow: number;
  growthStep: number;
  subscriberIngestSends: number;
  fanoutSeconds: number;
  fanoutWarmupSeconds: number;
  catchupStored: number;
}

const full: Sizes = {
  streamBatches: [1, 10, 100, 500, 1000],
  streamConcurrency: [1, 4],
  streamSends: 1_000_000,
  unaryOneSends: 100_000,
  unaryOneWarmupSends: 10_000,
  unaryBatchSends: 1_000_000,
  jsonBatchSends: 500_000,
  // The older services' own workload.
  restOneSends: 6_000,
  restOneWarmupSends: 6_000,
  rawBudgetSeconds: 60,
  latencySeconds: 30,
  latencyWarmupSeconds: 5,
  growthStored: 5_000_000,
  growthWindow: 100_000,
  growthStep: 600_000,
  subscriberIngestSends: 1_000_000,
  fanoutSeconds: 20,
  fanoutWarmupSeconds: 3,
  catchupStored: 1_000_000,
};

/**
 * A smoke check: every scenario, both passes, all reports, in under two
 * minutes on a quiet machine. Single-event runs are the slowest per event,
 * so they get the fewest; growth keeps its three-step shape at a hundredth
 * of the size.
 */
const quick: Sizes = {
  streamBatches: [10, 500],
  streamConcurrency: [1, 4],
  streamSends: 20_000,
  unaryOneSends: 3_000,
  unaryOneWarmupSends: 1_000,
  unaryBatchSends: 20_000,
  jsonBatchSends: 20_000,
  restOneSends: 2_000,
  restOneWarmupSends: 2_000,
  rawBudgetSeconds: 2,
  latencySeconds: 2,
  latencyWarmupSeconds: 1,
  growthStored: 50_000,
  growthWindow: 12_500,
  growthStep: 25_000,
  subscriberIngestSends: 20_000,
  fanoutSeconds: 3,
  fanoutWarmupSeconds: 1,
  catchupStored: 100_000,
};

/** Stream batch and concurrency the headline compares with the raw ceiling. */
export const headline = { batch: 500, concurrency: 4 };

/** Every scenario at the chosen size, in run order (the latency run after its calibration). */
export function allScenarios(isQuick: boolean): Scenario[] {
  const s = isQuick ? quick : full;
  const list: Scenario[] = [];
  for (const batch of s.streamBatches) {
    list.push({ kind: "raw", id: `raw-tuned-b${batch}`, label: `raw insert, server pragmas, ${batch}/txn`, pragmas: "tuned", batch, sends: s.streamSends, budgetSeconds: s.rawBudgetSeconds });
  }
  list.push({
    kind: "raw",
    id: `raw-default-b${headline.batch}`,
    label: `raw insert, SQLite default pragmas (WAL), ${headline.batch}/txn`,
    pragmas: "defaults",
    batch: headline.batch,
    sends: s.streamSends,
    budgetSeconds: s.rawBudgetSeconds,
  });
  for (const batch of s.streamBatches) {
    for (const concurrency of s.streamConcurrency) {
      list.push(load("grpc-stream", batch, concurrency, s.streamSends, `gRPC PublishStream, ${batch}/msg, ${concurrency} stream${concurrency > 1 ? "s" : ""}`));
    }
  }
  // Single-event runs are short and cost most per event: they are measured warm (run-scenario.ts).
  list.push(load("grpc", 1, 64, s.unaryOneSends, "gRPC Publish, 1/call, 64 in flight", s.unaryOneWarmupSends));
  list.push(load("grpc", 100, 8, s.unaryBatchSends, "gRPC Publish, 100/call, 8 in flight"));
  list.push(load("grpc", 1000, 8, s.unaryBatchSends, "gRPC Publish, 1000/call, 8 in flight"));
  list.push(load("connect", 100, 8, s.jsonBatchSends, "Connect JSON Publish (HTTP/1.1), 100/call, 8 in flight"));
  const restOne = load("rest", 1, 100, s.restOneSends, "REST POST /publish (HTTP/1.1), 1/request, 100 in flight", s.restOneWarmupSends);
  list.push(restOne);
  list.push({
    ...restOne,
    id: "rest-floor-b1-c100",
    label: "the same REST load against a stub that reads each request and answers at once, storing nothing: the floor of the measurement",
    against: "stub",
  });
  list.push(load("rest", 100, 8, s.jsonBatchSends, "REST POST /publish (HTTP/1.1), 100/request, 8 in flight"));
  const latency = {
    kind: "latency",
    transport: "grpc",
    batch: 1,
    calibratedBy: "grpc-b1-c64",
    share: 0.5,
    durationSeconds: s.latencySeconds,
    warmupSeconds: s.latencyWarmupSeconds,
    maxInFlight: 1000,
  } as const;
  list.push({ ...latency, id: "latency-grpc-b1", label: "gRPC Publish 1/call at 50% of its max rate, open loop", against: "tally" });
  list.push({
    ...latency,
    id: "latency-floor-grpc-b1",
    label: "the same load against a stub that answers at once and stores nothing: the floor of the measurement",
    against: "stub",
  });
  const growth: GrowthShape = { stored: s.growthStored, window: s.growthWindow, stepStored: s.growthStep };
  const growthTo = `growth to ${s.growthStored.toLocaleString("en-US")} stored`;
  // The same growth in SQLite alone, right before the server's: its first-to-last ratio is SQLite's own.
  list.push({
    kind: "raw",
    id: `raw-growth-b${headline.batch}`,
    label: `raw ${growthTo}, server pragmas, ${headline.batch}/txn`,
    pragmas: "tuned",
    batch: headline.batch,
    sends: growthPlan(growth).reduce((sum, step) => sum + step.sends, 0),
    // No time box: every step must store all its events (a day is never reached; the value crosses IPC as JSON, so it is finite).
    budgetSeconds: 86_400,
    growth,
  });
  list.push({
    kind: "growth",
    id: `growth-grpc-stream-b${headline.batch}-c${headline.concurrency}`,
    label: `${growthTo}, PublishStream ${headline.batch}/msg, ${headline.concurrency} streams`,
    transport: "grpc-stream",
    batch: headline.batch,
    concurrency: headline.concurrency,
    ...growth,
  });
  list.push(...subscriberScenarios(s));
  return list;
}

/** Subscriber counts of the ingest runs: none (the reference), one, and ten. */
const subscriberCounts = [0, 1, 10];

/** The fan-out run's shape: 100 topics, one subscriber each, 5,000 events/s as 50-event unary Publishes every 10 ms. */
const fanout = { topics: 100, rate: 5_000, batch: 50 };

/** Subscriber scenarios (issue point 7), tally's and JetStream's side by side. */
function subscriberScenarios(s: Sizes): Scenario[] {
  const shape = `${headline.batch}/msg on ${headline.concurrency} streams`;
  const ingest = (system: SubscriberSystem): SubscriberIngestScenario => ({
    kind: "subscriber-ingest",
    id: `subs-ingest-${system}`,
    label:
      system === "tally"
        ? `PublishStream ${shape} with ${subscriberCounts.join(", ")} subscribers following every topic`
        : `JetStream async publish, windows of ${headline.batch} on ${headline.concurrency} connections, with ${subscriberCounts.join(", ")} ordered consumers following every subject`,
    system,
    batch: headline.batch,
    concurrency: headline.concurrency,
    sends: s.subscriberIngestSends,
    subscriberCounts,
  });
  const catchup = (system: SubscriberSystem): CatchupScenario => ({
    kind: "catchup",
    id: `subs-catchup-${system}`,
    label: `${s.catchupStored.toLocaleString("en-US")} stored, then one ${system === "tally" ? "subscriber" : "ordered consumer"} reading all from the start`,
    system,
    stored: s.catchupStored,
    batch: headline.batch,
    concurrency: headline.concurrency,
  });
  return [
    ingest("tally"),
    ingest("jetstream"),
    {
      kind: "fanout",
      id: "subs-fanout-tally",
      label: `${fanout.topics} subscribers, one topic each, while unary Publish offers ${fanout.rate.toLocaleString("en-US")} events/s (${fanout.batch} per call every ${(1000 * fanout.batch) / fanout.rate} ms), open loop`,
      ...fanout,
      durationSeconds: s.fanoutSeconds,
      warmupSeconds: s.fanoutWarmupSeconds,
      // A fifth of a second of its topic's 50 events/s: one commit or two still on the way, not a subscriber falling behind.
      keptUpLag: 10,
    },
    catchup("tally"),
    catchup("jetstream"),
  ];
}

/** Growth's steps: the first window, the middle in steps, the last window; how many events each stores, and the sends that hold them. */
export function growthPlan(shape: GrowthShape): { stored: number; sends: number }[] {
  const stored = [shape.window];
  let middle = shape.stored - 2 * shape.window;
  while (middle > 0) {
    const step = Math.min(shape.stepStored, middle);
    stored.push(step);
    middle -= step;
  }
  stored.push(shape.window);
  return stored.map((n, k) => {
    const sends = Math.round(n / (1 - dupRate));
    if (uniqueCount(sends, dupRate) !== n) throw new Error(`growth step ${k}: ${sends} sends do not hold ${n} distinct events`);
    return { stored: n, sends };
  });
}

function load(transport: Transport, batch: number, concurrency: number, sends: number, label: string, warmupSends = 0): LoadScenario {
  const name = transport === "connect" ? "connect-json" : transport;
  return { kind: "load", id: `${name}-b${batch}-c${concurrency}`, label, transport, batch, concurrency, sends, warmupSends, against: "tally" };
}

/**
 * The scenarios `--only` names, by exact id, by prefix ("grpc-stream",
 * "raw") or by glob ("grpc-stream-b500-*"), in run order. A latency run
 * brings its calibration run along, since its rate comes from it.
 */
export function selectScenarios(all: Scenario[], only: string[] | undefined): Scenario[] {
  if (only === undefined || only.length === 0) return all;
  const unknown = only.filter((pattern) => !all.some((s) => matches(pattern, s.id)));
  if (unknown.length > 0) throw new Error(`--only: no scenario matches ${unknown.join(", ")}; known: ${all.map((s) => s.id).join(", ")}`);
  const chosen = new Set(all.filter((s) => only.some((pattern) => matches(pattern, s.id))).map((s) => s.id));
  for (const s of all) if (s.kind === "latency" && chosen.has(s.id)) chosen.add(s.calibratedBy);
  return all.filter((s) => chosen.has(s.id));
}

function matches(pattern: string, id: string): boolean {
  if (pattern.includes("*")) return new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`).test(id);
  return id === pattern || id.startsWith(`${pattern}-`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
