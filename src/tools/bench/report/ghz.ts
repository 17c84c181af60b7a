import type { LatencySummary } from "../../load/latency.js";
import type { Measurement, ScenarioResult } from "../measurement.js";

/**
 * A scenario's run in ghz's JSON report format (bojand/ghz runner.Report),
 * so tools that read ghz output read ours: durations in nanoseconds, the
 * histogram's marks in seconds, status names as gRPC spells them. ghz times
 * one unary call per latency; for PublishStream, whose single answer comes
 * after the last batch, one latency is a whole stream (tags.latency_unit),
 * and for raw runs one transaction.
 */
export interface GhzReport {
  name: string;
  endReason: "normal";
  options: { call: string; host: string; total: number; concurrency: number; qps?: number; insecure: boolean; CPUs: number };
  date: string;
  count: number;
  total: number;
  average: number;
  fastest: number;
  slowest: number;
  rps: number;
  errorDistribution: Record<string, number>;
  statusCodeDistribution: Record<string, number>;
  latencyDistribution: { percentage: number; latency: number }[];
  histogram: { mark: number; count: number; frequency: number }[];
  details: never[];
  tags: Record<string, string>;
}

const ns = (us: number) => Math.round(us * 1000);

function callName(result: ScenarioResult): string {
  const s = result.scenario;
  if (s.kind === "raw") return "sqlite.insert (in-process group appender)";
  // Subscriber runs get no ghz report (write.ts); named for completeness.
  if (!("transport" in s)) return "aggregator.v1.AggregatorService.Subscribe";
  const transport = s.transport;
  if (transport === "grpc-stream") return "aggregator.v1.AggregatorService.PublishStream";
  if (transport === "rest") return "POST /publish";
  return "aggregator.v1.AggregatorService.Publish";
}

/** The ghz report of `m`, one run of `result`'s scenario. */
export function ghzReport(result: ScenarioResult, m: Measurement, latency: LatencySummary = m.latency, date = new Date()): GhzReport {
  const s = result.scenario;
  const concurrency = s.kind === "latency" ? s.maxInFlight : "concurrency" in s ? s.concurrency : 1;
  return {
    name: `${result.pass}.${s.id}`,
    endReason: "normal",
    options: {
      call: callName(result),
      host: s.kind === "raw" ? "in-process" : "127.0.0.1",
      total: m.calls,
      concurrency,
      ...(m.offeredRate !== undefined && { qps: m.offeredRate }),
      insecure: true,
      CPUs: 2,
    },
    date: date.toISOString().replace(/\.\d{3}Z$/, "Z"),
    count: m.calls,
    total: ns(m.elapsedSeconds * 1e6),
    average: ns(latency.meanUs),
    fastest: ns(latency.minUs),
    slowest: ns(latency.maxUs),
    rps: m.callsPerSecond,
    errorDistribution: m.errors,
    statusCodeDistribution: m.statusCodes,
    latencyDistribution: latency.percentiles.map((p) => ({ percentage: p.percentage, latency: ns(p.us) })),
    histogram: latency.buckets.map((b) => ({ mark: b.markUs / 1e6, count: b.count, frequency: b.frequency })),
    details: [],
    tags: {
      scenario: s.id,
      durability: result.pass,
      latency_unit: m.latencyUnit,
      events: String(m.sends),
      events_per_second: m.eventsPerSecond.toFixed(0),
      unique_stored: String(m.uniqueStored),
      duplicates_reported: String(m.duplicatesReported),
      p99_9_ns: String(ns(latency.p999Us)),
      ...("batch" in s && { batch: String(s.batch) }),
      ...("transport" in s && { transport: s.transport }),
    },
  };
}
