import type { LoadSpec } from "../load/run-load.js";
import type { LoadResult } from "../load/run-record.js";
import { readStats } from "../load/stats-client.js";
import type { WorkloadSpec } from "../load/workload.js";
import type { Durability } from "../../store/types.js";
import type { LoaderProcess } from "./loader-client.js";
import type { Measurement } from "./measurement.js";
import { cpuPercent, sampleAnonPeak, sampleHostCpu, sampleProcess, stealPercent, type HostCpuSample, type ProcSample } from "./proc-usage.js";
import { dupRate } from "./scenarios.js";
import type { BenchServer } from "./server-process.js";
import { findMiscounts, inspectDatabase } from "./verify.js";

/**
 * The steps scenario runs are made of (run-scenario.ts, run-subscribers.ts):
 * the bench's workload, a timed load with the CPU around it, and the count
 * check at the end.
 */

/** Seed of every bench workload: the same events in every scenario and every run. */
export const benchSeed = 20_251_024;
/** Topics per event set, as the older services had. */
export const benchTopics = 4;

/** What a scenario run gets from the bench: the pass, the load generator, where to put databases, progress. */
export interface RunContext {
  pass: Durability;
  loader: LoaderProcess;
  /** Where temporary databases go; each run's directory is removed after it. */
  tmpRoot: string;
  /** Events acknowledged so far in this run, and how many the run will send. */
  onProgress: (done: number, total: number) => void;
  /** events/s of earlier scenarios in this pass, by id (latency runs take their rate from one). */
  measured: Map<string, number>;
}

/** The bench's workload of `sends` (its seed, its re-send share), numbered from indexBase. */
export function workloadOf(sends: number, indexBase = 0): WorkloadSpec {
  return { seed: benchSeed, sends, dupRate, indexBase };
}

/** KiB to MiB, rounded, for the reports. */
export const mib = (kib: number | undefined) => (kib === undefined ? undefined : Math.round(kib / 1024));

/** CPU of the server, the load generator and the machine around one timed load run, and the server's memory peak during it. */
export interface Usage {
  server: [ProcSample | undefined, ProcSample | undefined];
  loader: [ProcSample | undefined, ProcSample | undefined];
  host: [HostCpuSample | undefined, HostCpuSample | undefined];
  serverPeakAnonKiB: number | undefined;
}

/** Runs the prepared load with the server's, the loader's and the machine's CPU sampled around it. */
export async function timedLoad(ctx: RunContext, server: BenchServer, total: number): Promise<{ result: LoadResult; usage: Usage }> {
  const anon = sampleAnonPeak(server.pid);
  const server0 = sampleProcess(server.pid);
  const loader0 = sampleProcess(ctx.loader.pid);
  const host0 = sampleHostCpu();
  const result = await ctx.loader.runLoad((done) => ctx.onProgress(done, total)).finally(() => anon.stop());
  const usage: Usage = {
    server: [server0, sampleProcess(server.pid)],
    loader: [loader0, sampleProcess(ctx.loader.pid)],
    host: [host0, sampleHostCpu()],
    serverPeakAnonKiB: anon.stop(),
  };
  ctx.onProgress(result.sends, total);
  return { result, usage };
}

/** What a run's end found: what is stored, and anything wrong. */
export interface Checked {
  uniqueStored: number;
  /** Duplicates the server counted (Stats duplicate_dropped). */
  duplicatesReported: number;
  peakRssKiB: number | undefined;
  problems: string[];
}

/** Stops the server, checks its exit, and counts what the database holds against what was sent. */
export async function finish(
  server: BenchServer,
  dbPath: string,
  result: Pick<LoadResult, "sends" | "distinct" | "accepted" | "duplicates" | "conflicts" | "failedBatches">,
): Promise<Checked> {
  const stats = await readStats(server.url);
  const peakRssKiB = sampleProcess(server.pid)?.peakRssKiB;
  const exitCode = await server.stop();
  const database = inspectDatabase(dbPath);
  const problems = findMiscounts({
    sends: result.sends,
    distinct: result.distinct,
    answers: { accepted: result.accepted, duplicates: result.duplicates, conflicts: result.conflicts },
    stats,
    database,
    failedBatches: result.failedBatches,
  });
  if (exitCode !== 0) problems.push(`server exited with ${exitCode} after SIGTERM (expected 0 after a clean drain)`);
  return { uniqueStored: database.rows, duplicatesReported: stats.duplicateDropped, peakRssKiB, problems };
}

/** Server and loader resources over a run: CPU as % of one core, peak anonymous RSS; and the machine's CPU the hypervisor took, %. */
export interface Resources {
  serverCpu: number | undefined;
  loaderCpu: number | undefined;
  peakAnonKiB: number | undefined;
  hostSteal: number | undefined;
}

/** A timed load's samples as the figures a Measurement carries. */
export function resourcesOf(usage: Usage): Resources {
  return {
    serverCpu: cpuPercent(...usage.server),
    loaderCpu: cpuPercent(...usage.loader),
    peakAnonKiB: usage.serverPeakAnonKiB,
    hostSteal: stealPercent(...usage.host),
  };
}

/** The Measurement of a load run: its rate, its counts and check, the resources around it. */
export function fromLoad(result: LoadResult, resources: Resources, checked: Checked, server: BenchServer, unit: "call" | "stream"): Measurement {
  const peak = mib(checked.peakRssKiB);
  const peakAnon = mib(resources.peakAnonKiB);
  return {
    eventsPerSecond: result.sends / result.elapsedSeconds,
    callsPerSecond: result.calls / result.elapsedSeconds,
    elapsedSeconds: result.elapsedSeconds,
    sends: result.sends,
    distinct: result.distinct,
    uniqueStored: checked.uniqueStored,
    duplicatesReported: checked.duplicatesReported,
    answers: { accepted: result.accepted, duplicates: result.duplicates, conflicts: result.conflicts },
    calls: result.calls,
    latencyUnit: unit,
    latency: result.latency,
    statusCodes: result.statusCodes,
    errors: result.errors,
    ...(peak !== undefined && { serverPeakRssMiB: peak }),
    ...(peakAnon !== undefined && { serverPeakAnonRssMiB: peakAnon }),
    ...(resources.serverCpu !== undefined && { serverCpuPercent: resources.serverCpu }),
    ...(resources.loaderCpu !== undefined && { loaderCpuPercent: resources.loaderCpu }),
    ...(resources.hostSteal !== undefined && { hostStealPercent: resources.hostSteal }),
    problems: checked.problems,
    serverLog: [...server.problems],
    notes: [],
  };
}

/**
 * The same load on the fresh server before the measured part, counted only
 * for the final check: a process whose code is not yet compiled answers its
 * first second several times slower, which would be the figure of a run that
 * short (see the README).
 */
export async function warmUp(ctx: RunContext, server: BenchServer, spec: LoadSpec, batch: number, sends: number, measuredSends: number): Promise<LoadResult> {
  await ctx.loader.prepare({ kind: "load", spec, workload: workloadOf(sends), batch, topics: benchTopics, cache: "fresh" });
  return (await timedLoad(ctx, server, sends + measuredSends)).result;
}

/** The counts two load runs on one database add up to, for the check. */
export const countKeys = ["sends", "distinct", "accepted", "duplicates", "conflicts", "failedBatches"] as const;

/** What two runs on one database sent and were answered, together, for the count check. */
export function sumCounts(a: LoadResult, b: LoadResult): Pick<LoadResult, (typeof countKeys)[number]> {
  const sum = { sends: 0, distinct: 0, accepted: 0, duplicates: 0, conflicts: 0, failedBatches: 0 };
  for (const key of countKeys) sum[key] = a[key] + b[key];
  return sum;
}

