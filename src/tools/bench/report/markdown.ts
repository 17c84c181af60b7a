import type { ScenarioResult } from "../measurement.js";
import { againstStub, headline, isSubscriberScenario } from "../scenarios.js";
import type { Row } from "./rows.js";
import { subscribersSection } from "./subscribers.js";

/** Facts about the run that a reader needs to trust or compare a figure. */
export interface RunInfo {
  date: string;
  quick: boolean;
  runs: number;
  node: string;
  cpus: string;
  memoryGiB: number;
  command: string;
  seconds: number;
  /** 1-minute load average when the bench started and ended: above the core count, other work competed for the CPU. */
  loadAverage: { start: number; end: number };
  /** Share of the machine's CPU time the hypervisor took over the whole bench (/proc/stat steal), %; undefined off Linux. */
  hostStealPercent: number | undefined;
  /** Scenarios left out, and why (no NATS server). */
  skipped: string[];
}

const n = (value: number) => Math.round(value).toLocaleString("en-US");

function table(headers: string[], lines: (string | number)[][]): string {
  const escape = (cell: string | number) => String(cell).replace(/\|/g, "\\|");
  return [`| ${headers.join(" | ")} |`, `|${headers.map(() => "---").join("|")}|`, ...lines.map((l) => `| ${l.map(escape).join(" | ")} |`)].join("\n");
}

function headlineSection(results: ScenarioResult[]): string {
  const passes = [...new Set(results.map((r) => r.pass))];
  const lines: (string | number)[][] = [];
  for (const pass of passes) {
    const find = (id: string) => results.find((r) => r.pass === pass && r.scenario.id === id);
    const stream = find(`grpc-stream-b${headline.batch}-c${headline.concurrency}`);
    const raw = find(`raw-tuned-b${headline.batch}`);
    const rawDefault = find(`raw-default-b${headline.batch}`);
    if (stream === undefined && raw === undefined) continue;
    const ratio = stream !== undefined && raw !== undefined ? (stream.median.eventsPerSecond / raw.median.eventsPerSecond).toFixed(2) : "–";
    lines.push([
      pass,
      stream ? n(stream.median.eventsPerSecond) : "–",
      raw ? n(raw.median.eventsPerSecond) : "–",
      ratio,
      rawDefault ? n(rawDefault.median.eventsPerSecond) : "–",
    ]);
  }
  if (lines.length === 0) return "";
  return [
    "## Headline",
    "",
    `PublishStream with ${headline.batch} events per message on ${headline.concurrency} streams against the raw ceiling: the same events inserted in-process with the server's group appender, ${headline.batch} per transaction.`,
    "",
    table(["durability", `stream ${headline.batch}×${headline.concurrency} events/s`, "raw ceiling events/s", "stream / ceiling", "raw, SQLite default pragmas"], lines),
  ].join("\n");
}

/** Each load run against a stub beside tally's run of the same load: how much of the floor tally reaches. */
function floorSection(results: ScenarioResult[]): string {
  const lines: (string | number)[][] = [];
  for (const floor of results) {
    const f = floor.scenario;
    if (f.kind !== "load" || !againstStub(f)) continue;
    const tally = results.find((r) => {
      const t = r.scenario;
      return r.pass === floor.pass && t.kind === "load" && !againstStub(t) && t.transport === f.transport && t.batch === f.batch && t.concurrency === f.concurrency;
    });
    const ratio = tally === undefined ? "–" : (tally.median.eventsPerSecond / floor.median.eventsPerSecond).toFixed(2);
    lines.push([floor.pass, tally?.scenario.id ?? "–", tally ? n(tally.median.eventsPerSecond) : "–", n(floor.median.eventsPerSecond), ratio]);
  }
  if (lines.length === 0) return "";
  return [
    "## Against the floor",
    "",
    "The same load from the same load generator against a stub that reads each request and answers at once, storing nothing (same HTTP settings and Node flags as tally): what this machine, Node's HTTP and the load generator allow for any server.",
    "",
    table(["durability", "scenario", "tally events/s", "stub events/s", "tally / stub"], lines),
  ].join("\n");
}

function latencySection(results: ScenarioResult[]): string {
  const latency = results.filter((r) => r.scenario.kind === "latency");
  if (latency.length === 0) return "";
  const ms = (us: number) => (us / 1000).toFixed(2);
  return [
    "## Latency under load",
    "",
    "Single-event unary gRPC Publish sent open loop (on schedule, whatever is in flight) at half the rate the closed-loop run reached; latency per call, from send to answer.",
    "The stub rows are the floor of this measurement: the same load generator at the same rate against a server that answers at once and stores nothing (same HTTP/2 settings and Node flags). What tally adds is the difference.",
    "",
    table(
      ["durability", "against", "offered events/s", "achieved events/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "check"],
      latency.map((r) => {
        const l = r.median.latency;
        const against = againstStub(r.scenario) ? "stub (floor)" : "tally";
        return [r.pass, against, n(r.median.offeredRate ?? 0), n(r.median.eventsPerSecond), ms(l.p50Us), ms(l.p90Us), ms(l.p99Us), ms(l.p999Us), ms(l.maxUs), r.ok ? "ok" : "FAIL"];
      }),
    ),
  ].join("\n");
}

function growthSection(results: ScenarioResult[]): string {
  // The server's growth and SQLite's alone (raw-growth), in run order.
  const growth = results.filter((r) => r.median.growth !== undefined);
  if (growth.length === 0) return "";
  const parts = ["## Growth", ""];
  for (const r of growth) {
    const g = r.median.growth!;
    parts.push(
      `**${r.pass}**: ${r.scenario.label}. First window ${n(g.firstWindowEventsPerSecond)} events/s, last window ${n(g.lastWindowEventsPerSecond)} events/s (${(g.lastWindowEventsPerSecond / g.firstWindowEventsPerSecond).toFixed(2)}×).`,
      "",
      table(
        ["stored before", "stored after", "sends", "seconds", "events/s"],
        g.steps.map((s) => [n(s.storedBefore), n(s.storedAfter), n(s.sends), s.seconds.toFixed(1), n(s.eventsPerSecond)]),
      ),
      "",
    );
  }
  return parts.join("\n");
}

function scenarioTables(rows: Row[]): string {
  const passes = [...new Set(rows.map((r) => r.pass))];
  const parts = ["## All scenarios", ""];
  for (const pass of passes) {
    parts.push(
      `### durability ${pass}`,
      "",
      table(
        ["scenario", "what", "sends", "events/s", "calls/s", "p50 ms", "p99 ms", "latency of", "unique stored", "duplicates", "server RSS MiB (anon)", "server CPU %", "loader CPU %", "host steal %", "check"],
        rows
          .filter((r) => r.pass === pass)
          .map((r) => [
            r.scenario,
            r.label,
            n(r.sends),
            n(r.eventsPerSecond),
            r.callsPerSecond < 100 ? r.callsPerSecond : n(r.callsPerSecond),
            r.p50Ms,
            r.p99Ms,
            r.latencyUnit,
            n(r.uniqueStored),
            n(r.duplicatesReported),
            r.serverPeakRssMiB === "" ? "" : `${r.serverPeakRssMiB} (${r.serverPeakAnonRssMiB})`,
            r.serverCpuPercent,
            r.loaderCpuPercent,
            r.hostStealPercent,
            r.check,
          ]),
      ),
      "",
    );
  }
  return parts.join("\n");
}

function notesSection(rows: Row[], results: ScenarioResult[]): string {
  const notes = rows.filter((r) => r.notes !== "").map((r) => `- \`${r.pass}.${r.scenario}\`: ${r.notes}`);
  const logs = results.flatMap((r) => r.runs.flatMap((m) => m.serverLog.slice(0, 5).map((line) => `- \`${r.pass}.${r.scenario.id}\` server log: \`${line.slice(0, 300)}\``)));
  if (notes.length === 0 && logs.length === 0) return "";
  return ["## Notes", "", ...notes, ...logs].join("\n");
}

/** The Markdown report: headline, latency, growth, every scenario, notes. */
export function renderMarkdown(info: RunInfo, rows: Row[], results: ScenarioResult[]): string {
  const failed = rows.filter((r) => r.check === "FAIL");
  return [
    "# tally benchmark",
    "",
    `${info.date} · ${info.quick ? "quick (smoke-check sizes)" : "full size"} · ${info.runs} run${info.runs > 1 ? "s" : ""} per scenario (median shown) · Node ${info.node} · ${info.cpus} · ${info.memoryGiB} GiB · ${Math.round(info.seconds)} s · load average ${info.loadAverage.start.toFixed(1)} at start, ${info.loadAverage.end.toFixed(1)} at end${info.hostStealPercent === undefined ? "" : ` · host steal ${Math.round(info.hostStealPercent)}%`} · \`${info.command}\``,
    "",
    failed.length > 0 ? `**${failed.length} scenario(s) FAILED their count check: ${failed.map((r) => `${r.pass}.${r.scenario}`).join(", ")}.**\n` : "Every scenario against tally stored exactly its distinct events and reported every re-send as a duplicate; every stub run answered every call OK.\n",
    "events/s counts acknowledged sends (re-sends included) from the first send to the last acknowledgement. Each scenario ran on a fresh server and database; the load generator is a separate process. The machine is shared and noisy: compare figures from the same run.",
    "",
    ...info.skipped.map((line) => `**${line}**\n`),
    headlineSection(results),
    "",
    floorSection(results),
    "",
    // A run of subscriber scenarios alone has nothing to chart.
    results.some((r) => !isSubscriberScenario(r.scenario)) ? "![events/s by batch size](throughput-by-batch.svg)" : "",
    "",
    latencySection(results),
    "",
    growthSection(results),
    "",
    subscribersSection(results),
    "",
    scenarioTables(rows),
    "Latency is per unary call or HTTP request; for PublishStream, which answers once after its last batch, per whole stream; for raw runs, per transaction; for the fan-out run, from an event's commit to its arrival at its subscriber. A subscriber-ingest row is its 0-subscriber run (the others are in Subscribers). CPU is % of one core (two cores: up to 200). For raw runs the CPU column is the inserting process. Server RSS is the peak resident set (VmHWM); in parentheses the largest anonymous part seen (RssAnon: heaps and caches, not file pages).",
    "",
    notesSection(rows, results),
    "",
  ]
    .join("\n")
    .replace(/\n{3,}/g, "\n\n");
}
