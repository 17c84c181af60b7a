import type { Row } from "./rows.js";

/** RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled. */
function field(value: unknown): string {
  const text = Array.isArray(value) ? value.join(";") : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const columns: [header: string, key: keyof Row][] = [
  ["pass", "pass"],
  ["scenario", "scenario"],
  ["label", "label"],
  ["transport", "transport"],
  ["batch", "batch"],
  ["concurrency", "concurrency"],
  ["sends", "sends"],
  ["events_per_s", "eventsPerSecond"],
  ["calls_per_s", "callsPerSecond"],
  ["elapsed_s", "elapsedSeconds"],
  ["unique_stored", "uniqueStored"],
  ["duplicates_reported", "duplicatesReported"],
  ["latency_unit", "latencyUnit"],
  ["p50_ms", "p50Ms"],
  ["p90_ms", "p90Ms"],
  ["p99_ms", "p99Ms"],
  ["p99_9_ms", "p999Ms"],
  ["server_peak_rss_mib", "serverPeakRssMiB"],
  ["server_peak_anon_rss_mib", "serverPeakAnonRssMiB"],
  ["server_cpu_pct", "serverCpuPercent"],
  ["loader_cpu_pct", "loaderCpuPercent"],
  ["host_steal_pct", "hostStealPercent"],
  ["runs_events_per_s", "runsEventsPerSecond"],
  ["check", "check"],
  ["notes", "notes"],
];

/** One line per scenario and pass, the median run's figures; every run's rate in runs_events_per_s. */
export function renderCsv(rows: Row[]): string {
  const lines = [columns.map(([header]) => header).join(",")];
  for (const row of rows) lines.push(columns.map(([, key]) => field(row[key])).join(","));
  return `${lines.join("\n")}\n`;
}
