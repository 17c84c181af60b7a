import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ScenarioResult } from "../measurement.js";
import { isSubscriberScenario } from "../scenarios.js";
import { throughputChart } from "./chart.js";
import { renderCsv } from "./csv.js";
import { ghzReport } from "./ghz.js";
import { renderMarkdown, type RunInfo } from "./markdown.js";
import { toRow } from "./rows.js";

/** Files written, relative to the output directory. */
export const reportFiles = { markdown: "report.md", json: "report.json", csv: "report.csv", chart: "throughput-by-batch.svg", ghzDir: "ghz" } as const;

/** Writes every report into `dir` (replacing the previous run's) and returns the paths written. */
export function writeReports(dir: string, info: RunInfo, results: ScenarioResult[]): string[] {
  mkdirSync(dir, { recursive: true });
  const rows = results.map(toRow);
  const written: string[] = [];
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    written.push(join(dir, name));
  };
  write(reportFiles.markdown, renderMarkdown(info, rows, results));
  write(reportFiles.csv, renderCsv(rows));
  write(reportFiles.chart, throughputChart(results));
  write(reportFiles.json, `${JSON.stringify({ info, rows, results }, null, 2)}\n`);

  // Stale files from scenarios not run this time would pass for current ones.
  rmSync(join(dir, reportFiles.ghzDir), { recursive: true, force: true });
  mkdirSync(join(dir, reportFiles.ghzDir));
  const date = new Date(info.date);
  for (const result of results) {
    // ghz reports time calls; a subscriber run's figures are deliveries, in the Markdown and JSON reports.
    if (isSubscriberScenario(result.scenario)) continue;
    const base = join(reportFiles.ghzDir, `${result.pass}.${result.scenario.id}`);
    const growth = result.median.growth;
    if (growth !== undefined) {
      // One report per window, each the streams of that step alone.
      write(`${base}.first-window.json`, json(ghzReport(result, stepMeasurement(result, 0), growth.steps[0]!.latency, date)));
      write(`${base}.last-window.json`, json(ghzReport(result, stepMeasurement(result, growth.steps.length - 1), growth.steps.at(-1)!.latency, date)));
    } else {
      write(`${base}.json`, json(ghzReport(result, result.median, result.median.latency, date)));
    }
  }
  return written;
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A growth step seen as a measurement of its own, for its ghz report. */
function stepMeasurement(result: ScenarioResult, index: number) {
  const m = result.median;
  const step = m.growth!.steps[index]!;
  return {
    ...m,
    sends: step.sends,
    calls: step.calls,
    elapsedSeconds: step.seconds,
    eventsPerSecond: step.eventsPerSecond,
    callsPerSecond: step.calls / step.seconds,
    statusCodes: step.statusCodes,
    errors: step.errors,
  };
}
