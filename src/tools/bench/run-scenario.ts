import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LoadSpec } from "../load/run-load.js";
import type { LoadResult } from "../load/run-record.js";
import { uniqueCount, type WorkloadSpec } from "../load/workload.js";
import { growthFigures, type GrowthFigures, type Measurement } from "./measurement.js";
import { cpuPercent, sampleHostCpu, sampleProcess, stealPercent } from "./proc-usage.js";
import { runSubscriberScenario } from "./run-subscribers.js";
import {
  benchTopics,
  countKeys,
  finish,
  fromLoad,
  resourcesOf,
  sumCounts,
  timedLoad,
  warmUp,
  workloadOf,
  type Checked,
  type Resources,
  type RunContext,
} from "./run-steps.js";
import { dupRate, growthPlan, type GrowthScenario, type GrowthShape, type LatencyScenario, type LoadScenario, type RawScenario, type Scenario } from "./scenarios.js";
import { startServer, startStub, type BenchServer } from "./server-process.js";
import { findMiscounts, inspectDatabase } from "./verify.js";

export type { RunContext } from "./run-steps.js";

/**
 * Runs one scenario once: a fresh database (and a fresh server on it), the
 * load from the load-generator process, then the count check.
 */

export async function runScenario(scenario: Scenario, ctx: RunContext): Promise<Measurement> {
  const dir = mkdtempSync(join(ctx.tmpRoot, `${scenario.id}-`));
  try {
    switch (scenario.kind) {
      case "raw":
        return await runRaw(scenario, ctx, join(dir, "raw.db"));
      case "load":
        return await runLoadScenario(scenario, ctx, join(dir, "bench.db"));
      case "latency":
        return await runLatency(scenario, ctx, join(dir, "bench.db"));
      case "growth":
        return await runGrowth(scenario, ctx, join(dir, "bench.db"));
      case "subscriber-ingest":
      case "fanout":
      case "catchup":
        return await runSubscriberScenario(scenario, ctx, dir);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runRaw(s: RawScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const plan = s.growth === undefined ? [{ stored: 0, sends: s.sends }] : growthPlan(s.growth);
  const workloads: WorkloadSpec[] = [];
  for (let k = 0, storedBefore = 0; k < plan.length; storedBefore += plan[k]!.stored, k++) workloads.push(workloadOf(plan[k]!.sends, storedBefore));
  await ctx.loader.prepare({
    kind: "raw",
    dbPath,
    pragmas: s.pragmas,
    durability: ctx.pass,
    batch: s.batch,
    workloads,
    topics: benchTopics,
    budgetSeconds: s.budgetSeconds,
    cache: s.growth === undefined ? "shared" : "fresh",
  });
  const before = sampleProcess(ctx.loader.pid);
  const hostBefore = sampleHostCpu();
  const results = await ctx.loader.runRaw();
  const after = sampleProcess(ctx.loader.pid);
  const steal = stealPercent(hostBefore, sampleHostCpu());
  const raw = { sends: 0, distinct: 0, transactions: 0, elapsedSeconds: 0 };
  for (const r of results) for (const key of Object.keys(raw) as (keyof typeof raw)[]) raw[key] += r[key];
  const last = results[results.length - 1]!;
  ctx.onProgress(raw.sends, s.sends);
  const database = inspectDatabase(dbPath);
  const notes: string[] = [];
  if (results.some((r) => r.timeBoxed)) notes.push(`time-boxed: ${raw.sends} of ${s.sends} sends in the ${s.budgetSeconds} s budget`);
  notes.push(`pragmas: synchronous=${last.pragmas.synchronous} cache_size=${last.pragmas.cache_size} wal_autocheckpoint=${last.pragmas.wal_autocheckpoint}`);
  const m: Measurement = {
    eventsPerSecond: raw.sends / raw.elapsedSeconds,
    callsPerSecond: raw.transactions / raw.elapsedSeconds,
    elapsedSeconds: raw.elapsedSeconds,
    sends: raw.sends,
    distinct: raw.distinct,
    uniqueStored: database.rows,
    duplicatesReported: database.counters.duplicateDropped,
    calls: raw.transactions,
    latencyUnit: "transaction",
    latency: last.latency,
    statusCodes: { OK: raw.transactions },
    errors: {},
    ...(cpuPercent(before, after) !== undefined && { serverCpuPercent: cpuPercent(before, after)! }),
    ...(steal !== undefined && { hostStealPercent: steal }),
    problems: findMiscounts({ sends: raw.sends, distinct: raw.distinct, database, failedBatches: 0 }),
    serverLog: [],
    notes,
  };
  if (s.growth !== undefined) {
    const steps = results.map((r, k) => ({
      storedBefore: workloads[k]!.indexBase,
      storedAfter: workloads[k]!.indexBase + r.distinct,
      sends: r.sends,
      calls: r.transactions,
      statusCodes: { OK: r.transactions },
      errors: {},
      seconds: r.elapsedSeconds,
      eventsPerSecond: r.sends / r.elapsedSeconds,
      latency: r.latency,
    }));
    m.growth = growthFigures(steps);
    notes.unshift(growthNote(s.growth, m.growth, database.rows));
  }
  return m;
}

/** The first and last window's rates, for a growth run's notes. */
function growthNote(shape: GrowthShape, growth: GrowthFigures, stored: number): string {
  const window = shape.window.toLocaleString("en-US");
  const first = growth.firstWindowEventsPerSecond;
  const last = growth.lastWindowEventsPerSecond;
  return `first ${window} stored: ${Math.round(first)} events/s; last ${window} (to ${stored.toLocaleString("en-US")}): ${Math.round(last)} events/s (${(last / first).toFixed(2)}×)`;
}

async function runLoadScenario(s: LoadScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const server = s.against === "stub" ? await startStub(stubProtocolFor(s.transport)) : await startServer(dbPath, ctx.pass);
  try {
    const spec: LoadSpec = { target: server.url, transport: s.transport, concurrency: s.concurrency };
    const warmup = s.warmupSends > 0 ? await warmUp(ctx, server, spec, s.batch, s.warmupSends, s.sends) : undefined;
    const workload = workloadOf(s.sends, uniqueCount(s.warmupSends, dupRate));
    await ctx.loader.prepare({ kind: "load", spec, workload, batch: s.batch, topics: benchTopics, cache: warmup === undefined ? "shared" : "fresh" });
    const { result, usage } = await timedLoad(ctx, server, s.sends);
    const checked = s.against === "stub" ? await finishStub(server, result) : await finish(server, dbPath, warmup === undefined ? result : sumCounts(warmup, result));
    const m = fromLoad(result, resourcesOf(usage), checked, server, s.transport === "grpc-stream" ? "stream" : "call");
    if (warmup !== undefined) m.notes.push(`measured after ${s.warmupSends.toLocaleString("en-US")} sends of the same load, not measured`);
    if (s.against === "stub") m.notes.push(stubNote);
    return m;
  } finally {
    await server.stop();
  }
}

async function runLatency(s: LatencyScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const max = ctx.measured.get(s.calibratedBy);
  if (max === undefined) throw new Error(`${s.id} needs ${s.calibratedBy} to have run first in this pass`);
  const rate = Math.max(1, Math.round(max * s.share));
  const sends = Math.max(1, Math.round(rate * s.durationSeconds));
  const warmupSends = Math.round(rate * s.warmupSeconds);
  const server = s.against === "stub" ? await startStub("grpc") : await startServer(dbPath, ctx.pass);
  try {
    const spec: LoadSpec = { target: server.url, transport: s.transport, concurrency: s.maxInFlight, rate, openLoop: true };
    // Warmed up like the single-event load runs: cold code's first second would be this run's p99.
    const warmup = warmupSends > 0 ? await warmUp(ctx, server, spec, s.batch, warmupSends, sends) : undefined;
    const storedBefore = uniqueCount(warmupSends, dupRate);
    await ctx.loader.prepare({ kind: "load", spec, workload: workloadOf(sends, storedBefore), batch: s.batch, topics: benchTopics, cache: "fresh" });
    const { result, usage } = await timedLoad(ctx, server, sends);
    const checked = s.against === "stub" ? await finishStub(server, result) : await finish(server, dbPath, warmup === undefined ? result : sumCounts(warmup, result));
    const m = fromLoad(result, resourcesOf(usage), checked, server, "call");
    m.offeredRate = rate;
    m.notes.push(`offered ${rate} events/s (${Math.round(s.share * 100)}% of ${s.calibratedBy}'s ${Math.round(max)}) for ${s.durationSeconds} s, after ${s.warmupSeconds} s of the same load not measured`);
    if (s.against === "stub") m.notes.push(stubNote);
    if (result.scheduleLagUs !== undefined) {
      m.notes.push(`send lag behind schedule: p99 ${(result.scheduleLagUs.p99 / 1000).toFixed(2)} ms, max ${(result.scheduleLagUs.max / 1000).toFixed(2)} ms`);
    }
    return m;
  } finally {
    await server.stop();
  }
}

/** The stub answers single unary calls only: REST over HTTP/1.1 or gRPC Publish over h2c. */
function stubProtocolFor(transport: LoadScenario["transport"]): "grpc" | "rest" {
  if (transport === "rest" || transport === "grpc") return transport;
  throw new Error(`the stub cannot answer ${transport}`);
}

const stubNote = "against the stub (stub-server.ts): nothing stored, so no count check; every call must be answered OK";

/** Stops the stub and checks that every call it was sent was answered OK: it stores nothing to count. */
async function finishStub(server: BenchServer, result: LoadResult): Promise<Checked> {
  const peakRssKiB = sampleProcess(server.pid)?.peakRssKiB;
  const exitCode = await server.stop();
  const problems: string[] = [];
  const failed = result.calls - (result.statusCodes.OK ?? 0);
  if (failed > 0 || result.failedBatches > 0) problems.push(`the stub left ${failed} calls not OK and ${result.failedBatches} batches failed: ${JSON.stringify(result.errors)}`);
  if (result.sends !== result.calls) problems.push(`${result.sends} sends acknowledged in ${result.calls} calls; the stub answers every call`);
  if (exitCode !== 0) problems.push(`stub exited with ${exitCode} after SIGTERM`);
  return { uniqueStored: 0, duplicatesReported: 0, peakRssKiB, problems };
}

/**
 * Growth: one database filled step by step. Each step is a separate set of
 * streams whose events are encoded while the server idles, so the rate of
 * every step is measured like any other scenario's, and the first and last
 * windows say how the rate changes as the unique index grows.
 */
async function runGrowth(s: GrowthScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const plan = growthPlan(s);
  const totalSends = plan.reduce((sum, step) => sum + step.sends, 0);
  const server = await startServer(dbPath, ctx.pass);
  try {
    const spec: LoadSpec = { target: server.url, transport: s.transport, concurrency: s.concurrency };
    const steps: NonNullable<Measurement["growth"]>["steps"] = [];
    const totals = { sends: 0, distinct: 0, accepted: 0, duplicates: 0, conflicts: 0, failedBatches: 0, calls: 0, seconds: 0 };
    // CPU-seconds (and steal percent-seconds) summed over the steps, weighted by each step's length.
    const cpu = { server: 0, loader: 0, steal: 0 };
    let peakAnonKiB = 0;
    const statusCodes: Record<string, number> = {};
    const errors: Record<string, number> = {};
    for (const step of plan) {
      const storedBefore = totals.distinct;
      // Fresh ids per step (indexBase moves on); the encodings are let go after the step.
      await ctx.loader.prepare({ kind: "load", spec, workload: workloadOf(step.sends, storedBefore), batch: s.batch, topics: benchTopics, cache: "fresh" });
      const sentBefore = totals.sends;
      const wrapped = { ...ctx, onProgress: (done: number) => ctx.onProgress(sentBefore + done, totalSends) };
      const { result, usage } = await timedLoad(wrapped, server, totalSends);
      for (const key of [...countKeys, "calls"] as const) totals[key] += result[key];
      totals.seconds += result.elapsedSeconds;
      for (const [name, n] of Object.entries(result.statusCodes)) statusCodes[name] = (statusCodes[name] ?? 0) + n;
      for (const [text, n] of Object.entries(result.errors)) errors[text] = (errors[text] ?? 0) + n;
      cpu.server += ((cpuPercent(...usage.server) ?? 0) * result.elapsedSeconds) / 100;
      cpu.loader += ((cpuPercent(...usage.loader) ?? 0) * result.elapsedSeconds) / 100;
      cpu.steal += ((stealPercent(...usage.host) ?? 0) * result.elapsedSeconds) / 100;
      peakAnonKiB = Math.max(peakAnonKiB, usage.serverPeakAnonKiB ?? 0);
      steps.push({
        storedBefore,
        storedAfter: totals.distinct,
        sends: result.sends,
        calls: result.calls,
        statusCodes: result.statusCodes,
        errors: result.errors,
        seconds: result.elapsedSeconds,
        eventsPerSecond: result.sends / result.elapsedSeconds,
        latency: result.latency,
      });
    }
    const checked = await finish(server, dbPath, totals);
    const last = steps[steps.length - 1]!;
    const growth = growthFigures(steps);
    const whole: LoadResult = { ...totals, elapsedSeconds: totals.seconds, statusCodes, errors, latency: last.latency };
    const resources: Resources = {
      serverCpu: (100 * cpu.server) / totals.seconds,
      loaderCpu: (100 * cpu.loader) / totals.seconds,
      peakAnonKiB,
      hostSteal: (100 * cpu.steal) / totals.seconds,
    };
    return {
      ...fromLoad(whole, resources, checked, server, "stream"),
      growth,
      notes: [growthNote(s, growth, totals.distinct)],
    };
  } finally {
    await server.stop();
  }
}
