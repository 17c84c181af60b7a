#!/usr/bin/env node
/**
 * npm run bench: every scenario of GitHub issue #3 against fresh servers and
 * databases, once per durability, with the load generator in a process of
 * its own; reports in bench-results/ (Markdown, JSON, CSV, an SVG chart and
 * ghz-format summaries). Exits 1 if any run miscounted.
 *
 *   npm run bench                       full size (tens of minutes)
 *   npm run bench -- --quick            smoke check, a few minutes
 *   npm run bench -- --only grpc-stream-b500-c4,raw-tuned-b500 --durability full --runs 3
 *   npm run bench -- --list             scenario ids
 */
import { Command, InvalidArgumentError } from "commander";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import type { Durability } from "../../store/types.js";
import { LatencyRecorder } from "../load/latency.js";
import { LoaderProcess } from "./loader-client.js";
import { summarize, type Measurement, type ScenarioResult } from "./measurement.js";
import { sampleHostCpu, stealPercent } from "./proc-usage.js";
import { benchProgress } from "./progress.js";
import { writeReports, reportFiles } from "./report/write.js";
import { runScenario } from "./run-scenario.js";
import { jetStreamAvailable, natsSkippedLine } from "./jetstream.js";
import { allScenarios, selectScenarios, usesJetStream, type Scenario } from "./scenarios.js";

interface BenchOptions {
  quick: boolean;
  only: string[] | undefined;
  runs: number;
  durability: Durability[];
  out: string;
  tmp: string;
  list: boolean;
}

function parseOptions(argv: string[]): BenchOptions {
  const list = (text: string) =>
    text
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
  const durabilities = (text: string): Durability[] => {
    const values = list(text);
    for (const v of values) if (v !== "full" && v !== "normal") throw new InvalidArgumentError(`durability must be full or normal, got "${v}"`);
    if (values.length === 0) throw new InvalidArgumentError("name at least one durability");
    return values as Durability[];
  };
  const runs = (text: string) => {
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
    return Number(text);
  };
  return new Command("tally-bench")
    .description("Benchmark tally: throughput per transport and batch size against the raw SQLite ceiling, latency, growth")
    .option("--quick", "small sizes for a smoke check (a few minutes)", false)
    .option("--only <ids>", "comma-separated scenario ids, prefixes or globs (see --list)", list)
    .option("--runs <n>", "runs per scenario; the median run is reported", runs, 1)
    .option("--durability <modes>", "passes to run, comma-separated", durabilities, ["full", "normal"] as Durability[])
    .option("--out <dir>", "report directory", "bench-results")
    .option("--tmp <dir>", "where temporary databases go", tmpdir())
    .option("--list", "print the scenario ids and exit", false)
    .parse(argv, { from: "user" })
    .opts<BenchOptions>();
}

/** A run that threw: no figures, and the reason as its problem, so the bench fails loudly but goes on. */
function failedRun(err: unknown): Measurement {
  return {
    eventsPerSecond: 0,
    callsPerSecond: 0,
    elapsedSeconds: 0,
    sends: 0,
    distinct: 0,
    uniqueStored: 0,
    duplicatesReported: 0,
    calls: 0,
    latencyUnit: "call",
    latency: new LatencyRecorder().summary(),
    statusCodes: {},
    errors: {},
    problems: [`run failed: ${err instanceof Error ? err.message : String(err)}`],
    serverLog: [],
    notes: [],
  };
}

function oneLine(r: ScenarioResult): string {
  const m = r.median;
  const p99 = m.latency.count > 0 ? `, p99 ${(m.latency.p99Us / 1000).toFixed(1)} ms/${m.latencyUnit}` : "";
  const cpu = m.serverCpuPercent !== undefined ? `, server ${Math.round(m.serverCpuPercent)}% CPU` : "";
  const check = r.ok ? "ok" : `FAIL: ${r.runs.flatMap((run) => run.problems).join("; ")}`;
  return `${r.pass}.${r.scenario.id}: ${Math.round(m.eventsPerSecond).toLocaleString("en-US")} events/s${p99}${cpu}; ${m.uniqueStored.toLocaleString("en-US")} stored, ${m.duplicatesReported.toLocaleString("en-US")} duplicates: ${check}`;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  let scenarios: Scenario[] = selectScenarios(allScenarios(options.quick), options.only);
  if (options.list) {
    for (const s of scenarios) console.log(`${s.id.padEnd(34)} ${s.label}`);
    return 0;
  }
  const skipped: string[] = [];
  if (scenarios.some(usesJetStream) && !(await jetStreamAvailable())) {
    console.log(natsSkippedLine);
    skipped.push(natsSkippedLine);
    scenarios = scenarios.filter((s) => !usesJetStream(s));
  }
  const startedAt = new Date();
  const loadAtStart = loadavg()[0]!;
  const hostAtStart = sampleHostCpu();
  const loader = new LoaderProcess();
  const progress = benchProgress();
  const results: ScenarioResult[] = [];
  const info = () => ({
    date: startedAt.toISOString(),
    quick: options.quick,
    runs: options.runs,
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    loadAverage: { start: loadAtStart, end: loadavg()[0]! },
    hostStealPercent: stealPercent(hostAtStart, sampleHostCpu()),
    skipped,
  });
  // tally's durability does not change JetStream: its scenarios run in the first pass only.
  const inPass = (scenario: Scenario, pass: Durability) => !usesJetStream(scenario) || pass === options.durability[0];
  const total = options.durability.reduce((sum, pass) => sum + scenarios.filter((s) => inPass(s, pass)).length, 0);
  let index = 0;
  try {
    for (const pass of options.durability) {
      const measured = new Map<string, number>();
      for (const scenario of scenarios) {
        if (!inPass(scenario, pass)) continue;
        progress.begin(`${pass}.${scenario.id}`, index++, total);
        const scenarioStarted = performance.now();
        const runs: Measurement[] = [];
        for (let run = 0; run < options.runs; run++) {
          try {
            runs.push(await runScenario(scenario, { pass, loader, tmpRoot: options.tmp, measured, onProgress: (done, all) => progress.advance(done, all) }));
          } catch (err) {
            runs.push(failedRun(err));
          }
        }
        const result = summarize(pass, scenario, runs);
        results.push(result);
        if (result.ok) measured.set(scenario.id, result.median.eventsPerSecond);
        progress.end(`${oneLine(result)} [${((performance.now() - scenarioStarted) / 1000).toFixed(1)} s]`);
        // Written after every scenario, so an interrupted bench still leaves what it measured.
        writeReports(options.out, info(), results);
      }
    }
  } finally {
    progress.stop();
    loader.close();
  }
  writeReports(options.out, info(), results);
  const failed = results.filter((r) => !r.ok);
  console.log(`\nreports: ${options.out}/${reportFiles.markdown}, ${reportFiles.json}, ${reportFiles.csv}, ${reportFiles.chart}, ${reportFiles.ghzDir}/*.json`);
  for (const r of results) console.log(oneLine(r));
  if (failed.length > 0) {
    console.log(`\nFAIL: ${failed.length} scenario(s) did not count exactly what was sent`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
