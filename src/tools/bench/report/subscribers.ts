import type { IngestFigure, ScenarioResult } from "../measurement.js";
import type { SubscriberSystem } from "../scenarios.js";

/**
 * The report's Subscribers section (issue point 7): tally and JetStream
 * side by side, each figure the median over the runs, each ingest ratio
 * the median of the runs' own ratios (every run measures its 0-subscriber
 * rate minutes before the others, so drift of the machine over the bench
 * does not enter the ratio).
 */

const n = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (us: number) => (us / 1000).toFixed(1);
const percent = (share: number) => `${Math.floor(share * 100)}%`;

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function table(headers: string[], lines: string[][]): string {
  return [`| ${headers.join(" | ")} |`, `|${headers.map(() => "---").join("|")}|`, ...lines.map((l) => `| ${l.join(" | ")} |`)].join("\n");
}

/** Each run's figure for `count` subscribers of an ingest result. */
function ingestRuns(r: ScenarioResult | undefined, count: number): IngestFigure[] {
  if (r === undefined) return [];
  return r.runs.flatMap((m) => m.subscribers?.ingest?.filter((f) => f.subscribers === count) ?? []);
}

function fmt(value: number | undefined, format: (v: number) => string): string {
  return value === undefined ? "–" : format(value);
}

/** The Subscribers table, and the ingest runs in detail; empty when no subscriber scenario ran. */
export function subscribersSection(results: ScenarioResult[]): string {
  const ofKind = results.filter((r) => r.scenario.kind === "subscriber-ingest" || r.scenario.kind === "fanout" || r.scenario.kind === "catchup");
  if (ofKind.length === 0) return "";
  // JetStream ran in the first pass only (tally's durability does not change it): every pass's rows show it.
  const find = (pass: string, kind: string, system: SubscriberSystem | undefined) =>
    ofKind.find((r) => r.scenario.kind === kind && (system === undefined || ("system" in r.scenario && r.scenario.system === system)) && (system === "jetstream" || r.pass === pass));
  const passes = [...new Set(ofKind.filter((r) => !("system" in r.scenario) || r.scenario.system === "tally").map((r) => r.pass))];
  if (passes.length === 0) passes.push(ofKind[0]!.pass);
  const lines: string[][] = [];
  const detail: string[][] = [];
  for (const pass of passes) {
    const ingest = { tally: find(pass, "subscriber-ingest", "tally"), jetstream: find(pass, "subscriber-ingest", "jetstream") };
    const counts = [...new Set([ingest.tally, ingest.jetstream].flatMap((r) => r?.runs.flatMap((m) => m.subscribers?.ingest?.map((f) => f.subscribers) ?? []) ?? []))].sort((a, b) => a - b);
    const base = { tally: median(ingestRuns(ingest.tally, 0).map((f) => f.eventsPerSecond)), jetstream: median(ingestRuns(ingest.jetstream, 0).map((f) => f.eventsPerSecond)) };
    for (const count of counts) {
      const cells = (system: SubscriberSystem) => {
        const runs = ingestRuns(ingest[system], count);
        const live = count === 0 ? undefined : median(runs.map((f) => f.liveShare));
        const rate = fmt(median(runs.map((f) => f.eventsPerSecond)), (v) => `${n(v)} events/s`);
        return [live === undefined ? rate : `${rate}; ${percent(live)} delivered live`, fmt(median(runs.map((f) => f.ratio)), (v) => v.toFixed(2))];
      };
      lines.push([pass, `ingest, ${count} subscriber${count === 1 ? "" : "s"} following every topic`, ...cells("tally"), ...cells("jetstream")]);
      for (const system of ["tally", "jetstream"] as const) {
        const runs = ingestRuns(ingest[system], count);
        if (runs.length === 0) continue;
        detail.push([
          pass,
          system,
          String(count),
          runs.map((f) => n(f.eventsPerSecond)).join(" / "),
          runs.map((f) => f.ratio.toFixed(2)).join(" / "),
          count === 0 ? "" : runs.map((f) => percent(f.liveShare)).join(" / "),
          runs.map((f) => n(f.allDeliveredPerSecond)).join(" / "),
          fmt(median(runs.flatMap((f) => (f.serverCpuPercent === undefined ? [] : [f.serverCpuPercent]))), (v) => String(Math.round(v))),
          fmt(median(runs.flatMap((f) => (f.subscriberCpuPercent === undefined ? [] : [f.subscriberCpuPercent]))), (v) => String(Math.round(v))),
          fmt(median(runs.flatMap((f) => (f.loaderCpuPercent === undefined ? [] : [f.loaderCpuPercent]))), (v) => String(Math.round(v))),
          fmt(median(runs.map((f) => f.tailSeconds)), (v) => v.toFixed(1)),
          fmt(median(runs.flatMap((f) => (f.hostStealPercent === undefined ? [] : [f.hostStealPercent]))), (v) => String(Math.round(v))),
        ]);
      }
    }
    const fanout = find(pass, "fanout", undefined);
    if (fanout !== undefined) {
      const runs = fanout.runs.filter((m) => m.subscribers?.fanout !== undefined);
      const f = runs.map((m) => m.subscribers!.fanout!);
      const keptUp = f.filter((x) => x.keptUp).length;
      const figure =
        runs.length === 0
          ? "–"
          : `p50 ${fmt(median(runs.map((m) => m.latency.p50Us)), ms)} ms, p99 ${fmt(median(runs.map((m) => m.latency.p99Us)), ms)} ms; kept up in ${keptUp} of ${runs.length} run${runs.length === 1 ? "" : "s"} (largest lag at the end ${Math.max(...f.map((x) => x.maxLagAtEnd))} events)`;
      const label = f[0] === undefined ? fanout.scenario.label : `fan-out: ${f[0].subscribers} subscribers, one topic each, ${n(f[0].offeredRate)} events/s offered: commit-to-delivery latency`;
      lines.push([pass, label, figure, "", "not measured", ""]);
    }
    const catchup = { tally: find(pass, "catchup", "tally"), jetstream: find(pass, "catchup", "jetstream") };
    if (catchup.tally !== undefined || catchup.jetstream !== undefined) {
      const cells = (system: SubscriberSystem) => {
        const rate = median(catchup[system]?.runs.flatMap((m) => (m.subscribers?.catchup === undefined ? [] : [m.subscribers.catchup.eventsPerSecond])) ?? []);
        const baseRate = base[system];
        return [fmt(rate, (v) => `${n(v)} events/s`), rate !== undefined && baseRate !== undefined ? `${(rate / baseRate).toFixed(2)}*` : "–"];
      };
      const stored = (catchup.tally ?? catchup.jetstream)!.runs[0]?.subscribers?.catchup?.stored;
      lines.push([pass, `catch-up: one subscriber reads ${stored === undefined ? "everything" : n(stored)} stored events from the start`, ...cells("tally"), ...cells("jetstream")]);
    }
  }
  const parts = [
    "## Subscribers",
    "",
    "Publishing with live subscribers in a process of their own (PublishStream 500 per message on 4 streams; JetStream: async publishes in windows of 500 on 4 connections, the same event bytes, re-sends dropped by Nats-Msg-Id), one subscriber per topic under a fixed load, and one subscriber catching up from the start. Medians over the runs; every subscriber is checked to have received every stored event once, in seq order. JetStream's file storage syncs to disk every 2 minutes by default, not before each ack as tally's `full` durability does: compare it with `normal`.",
    "",
    table(["durability", "scenario", "tally", "tally / its 0-subscriber run", "JetStream", "JetStream / its 0-consumer run"], lines),
    "",
    "\\* catch-up rate over the same system's 0-subscriber ingest rate: above 1, a subscriber left behind catches up while producers publish at full speed.",
  ];
  if (detail.length > 0) {
    parts.push(
      "",
      "Ingest with subscribers, run by run. Delivered live: the share of the stored events the furthest-behind subscriber held when the last publish was answered (the rest it was served afterwards); events/s until all delivered: stored events over the time from the first publish until every subscriber held all of them; the tail: how long after the last answer the last subscriber received its last event. Server CPU for JetStream is the local nats-server's; CPU figures are medians, over the publishing.",
      "",
      table(
        ["durability", "system", "subscribers", "events/s per run", "ratio per run", "delivered live per run", "events/s until all delivered, per run", "server CPU %", "subscriber process CPU %", "load generator CPU %", "tail s", "host steal %"],
        detail,
      ),
    );
  }
  return parts.join("\n");
}
