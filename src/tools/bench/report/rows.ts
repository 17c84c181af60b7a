import type { ScenarioResult } from "../measurement.js";
import type { Scenario } from "../scenarios.js";

/** One scenario in one pass as the tables print it: the median run, plus every run's rate. */
export interface Row {
  pass: string;
  scenario: string;
  label: string;
  transport: string;
  batch: number | "";
  concurrency: number | "";
  sends: number;
  eventsPerSecond: number;
  callsPerSecond: number;
  elapsedSeconds: number;
  uniqueStored: number;
  duplicatesReported: number;
  latencyUnit: string;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  serverPeakRssMiB: number | "";
  serverPeakAnonRssMiB: number | "";
  serverCpuPercent: number | "";
  loaderCpuPercent: number | "";
  hostStealPercent: number | "";
  runsEventsPerSecond: number[];
  check: "ok" | "FAIL";
  notes: string;
}

const ms = (us: number) => Math.round(us) / 1000;
const round1 = (n: number | undefined): number | "" => (n === undefined ? "" : Math.round(n * 10) / 10);

/**
 * Steal above this share of the machine's CPU in any run gets a note. A few
 * percent is everyday noise on a shared VM; on the development machine it
 * reached 70–90% while the host throttled it, and a loop that takes 13–22 ms
 * took 0.4–3.6 s.
 */
const noticeableStealPercent = 10;

/** Every run's steal when any run's was noticeable, so a reader can tell which runs the host slowed. */
function stealNote(runs: ScenarioResult["runs"]): string | undefined {
  const steals = runs.map((run) => run.hostStealPercent);
  if (!steals.some((s) => s !== undefined && s >= noticeableStealPercent)) return undefined;
  const each = steals.map((s) => (s === undefined ? "?" : String(Math.round(s)))).join(" / ");
  return `the hypervisor took ${each}% of the machine's CPU during ${runs.length > 1 ? "these runs" : "this run"} (/proc/stat steal), which slows every figure of a run`;
}

/** How a scenario's load reached its server, for the transport, batch and concurrency columns. */
function shapeOf(s: Scenario): { transport: string; batch: number | ""; concurrency: number | "" } {
  switch (s.kind) {
    case "raw":
      return { transport: `raw-${s.pragmas}`, batch: s.batch, concurrency: "" };
    case "latency":
      return { transport: s.transport, batch: s.batch, concurrency: s.maxInFlight };
    case "fanout":
      return { transport: "grpc", batch: s.batch, concurrency: "" };
    case "subscriber-ingest":
    case "catchup":
      return { transport: s.system === "tally" ? "grpc-stream" : "jetstream", batch: s.batch, concurrency: s.concurrency };
    default:
      return { transport: s.transport, batch: s.batch, concurrency: s.concurrency };
  }
}

export function toRow(r: ScenarioResult): Row {
  const s = r.scenario;
  const m = r.median;
  const problems = r.runs.flatMap((run, i) => run.problems.map((p) => (r.runs.length > 1 ? `run ${i + 1}: ${p}` : p)));
  return {
    pass: r.pass,
    scenario: s.id,
    label: s.label,
    ...shapeOf(s),
    sends: m.sends,
    eventsPerSecond: Math.round(m.eventsPerSecond),
    // Streams run a handful of calls in seconds: keep two decimals below 100/s so the figure is not 0.
    callsPerSecond: m.callsPerSecond < 100 ? Math.round(m.callsPerSecond * 100) / 100 : Math.round(m.callsPerSecond),
    elapsedSeconds: Math.round(m.elapsedSeconds * 100) / 100,
    uniqueStored: m.uniqueStored,
    duplicatesReported: m.duplicatesReported,
    latencyUnit: m.latencyUnit,
    p50Ms: ms(m.latency.p50Us),
    p90Ms: ms(m.latency.p90Us),
    p99Ms: ms(m.latency.p99Us),
    p999Ms: ms(m.latency.p999Us),
    serverPeakRssMiB: m.serverPeakRssMiB ?? "",
    serverPeakAnonRssMiB: m.serverPeakAnonRssMiB ?? "",
    serverCpuPercent: round1(m.serverCpuPercent),
    loaderCpuPercent: round1(m.loaderCpuPercent),
    hostStealPercent: round1(m.hostStealPercent),
    runsEventsPerSecond: r.runs.map((run) => Math.round(run.eventsPerSecond)),
    check: r.ok ? "ok" : "FAIL",
    notes: [...problems, ...m.notes, stealNote(r.runs)].filter((note) => note !== undefined).join("; "),
  };
}
