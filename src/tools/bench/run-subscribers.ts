import { join } from "node:path";
import { LatencyRecorder } from "../load/latency.js";
import { numberedTopics } from "../load/events.js";
import type { LoadSpec } from "../load/run-load.js";
import type { LoadResult } from "../load/run-record.js";
import { readStats } from "../load/stats-client.js";
import type { WorkloadSpec } from "../load/workload.js";
import { BenchStream, natsServerPid, natsUrl } from "./jetstream.js";
import type { CatchupFigure, IngestFigure, Measurement } from "./measurement.js";
import { cpuPercent, sampleProcess, type ProcSample } from "./proc-usage.js";
import {
  benchSeed,
  benchTopics,
  finish,
  fromLoad,
  resourcesOf,
  sumCounts,
  timedLoad,
  workloadOf,
  type Checked,
  type RunContext,
} from "./run-steps.js";
import type { CatchupScenario, FanoutScenario, SubscriberIngestScenario, SubscriberScenario } from "./scenarios.js";
import { startServer, type BenchServer } from "./server-process.js";
import { findSubscriberMiscounts, seqRange, storedSeqs } from "./subscriber-checks.js";
import { SubscriberProcess, type SubscribersFinished } from "./subscribers-client.js";

/**
 * Runs one subscriber scenario once (issue point 7): publishing with live
 * subscribers, fan-out latency, and catch-up, against tally or NATS
 * JetStream. Subscribers run in a process of their own (subscribers.ts);
 * every run ends with the check that each received exactly its events.
 */

/** Runs one subscriber scenario once; `dir` is the run's temporary directory, removed by the caller. */
export async function runSubscriberScenario(s: SubscriberScenario, ctx: RunContext, dir: string): Promise<Measurement> {
  switch (s.kind) {
    case "subscriber-ingest":
      return await runIngest(s, ctx, dir);
    case "fanout":
      return await runFanout(s, ctx, join(dir, "fanout.db"));
    case "catchup":
      return s.system === "tally" ? await runTallyCatchup(s, ctx, join(dir, "catchup.db")) : await runJetStreamCatchup(s, ctx);
  }
}

/**
 * How long subscribers may take, after the publishing, to hold everything.
 * A subscriber left behind is served from the database at its own pace, so
 * a slow one is waited for as long as it keeps receiving; one that receives
 * nothing for stallMs has lost something, and the run fails instead of
 * hanging the bench.
 */
const finishLimits = { stallMs: 30_000, capMs: 30 * 60_000 };

/** Heartbeat interval of live subscribers: short, since the end of a run waits for a caught-up heartbeat at worst this long. */
const liveHeartbeatMs = 1_000;

/** The fan-out's 100 subscriptions share this many HTTP/2 connections (tally's per-address connection limit is 100). */
const fanoutConnections = 10;

/** Calls in flight at most in the fan-out's open loop: far above the 100 calls/s it needs. */
const fanoutMaxInFlight = 100;

/** The JetStream server as the steps of a run see a server: its pid for CPU, when it runs here. */
function natsAsServer(): BenchServer {
  return { pid: natsServerPid() ?? -1, url: natsUrl, problems: [], stop: () => Promise.resolve(0) };
}

/** A workload of distinct events only (fills and the fan-out: nothing to drop, every event delivered). */
function distinctWorkload(sends: number, indexBase = 0): WorkloadSpec {
  return { seed: benchSeed, sends, dupRate: 0, indexBase };
}

/** The seconds between the last publish answered and the last event any subscriber received (0 if it came before). */
function tailSeconds(finished: SubscribersFinished, loadDoneAtMs: number): number {
  const last = Math.max(0, ...finished.followers.map((f) => f.lastEventAtMs));
  return Math.max(0, last - loadDoneAtMs) / 1000;
}

function gaveUpProblem(finished: SubscribersFinished): string[] {
  return finished.gaveUp === undefined ? [] : [`stopped waiting for the subscribers: ${finished.gaveUp}`];
}

/** Publishes with 0, 1 and 10 subscribers, each count on a fresh server (or stream); the 0-subscriber run is the Measurement, the rest its figures. */
async function runIngest(s: SubscriberIngestScenario, ctx: RunContext, dir: string): Promise<Measurement> {
  const total = s.sends * s.subscriberCounts.length;
  const figures: IngestFigure[] = [];
  const problems: string[] = [];
  let reference: Measurement | undefined;
  for (const [k, count] of s.subscriberCounts.entries()) {
    const wrapped: RunContext = { ...ctx, onProgress: (done) => ctx.onProgress(k * s.sends + done, total) };
    const run = s.system === "tally" ? await tallyIngest(s, wrapped, join(dir, `ingest-${count}.db`), count) : await jetStreamIngest(s, wrapped, count);
    problems.push(...run.m.problems.map((p) => `${count} subscribers: ${p}`));
    reference ??= run.m;
    figures.push({ ...run.figure, ratio: run.figure.eventsPerSecond / reference.eventsPerSecond });
  }
  const m = reference!;
  m.problems = problems;
  m.subscribers = { ingest: figures };
  m.notes.push(
    figures
      .map((f) => `${f.subscribers} subscribers: ${Math.round(f.eventsPerSecond)} events/s (${f.ratio.toFixed(2)}), last delivery ${f.tailSeconds.toFixed(1)} s after the last answer`)
      .join("; "),
  );
  return m;
}

/** The subscriber process's CPU over the timed load: sampled around it, like the server's. */
async function withSubscriberCpu<T>(subs: SubscriberProcess | undefined, run: () => Promise<T>): Promise<{ value: T; cpu: number | undefined }> {
  const before: ProcSample | undefined = subs && sampleProcess(subs.pid);
  const value = await run();
  return { value, cpu: subs && cpuPercent(before, sampleProcess(subs.pid)) };
}

async function tallyIngest(s: SubscriberIngestScenario, ctx: RunContext, dbPath: string, count: number): Promise<{ m: Measurement; figure: Omit<IngestFigure, "ratio"> }> {
  const server = await startServer(dbPath, ctx.pass);
  const subs = count > 0 ? new SubscriberProcess() : undefined;
  try {
    const spec: LoadSpec = { target: server.url, transport: "grpc-stream", concurrency: s.concurrency };
    await ctx.loader.prepare({ kind: "load", spec, workload: workloadOf(s.sends), batch: s.batch, topics: benchTopics, cache: "shared" });
    await subs?.start({ kind: "tally", target: server.url, topics: Array<string>(count).fill(""), connections: count, start: "new", heartbeatMs: liveHeartbeatMs, latency: true });
    const { value, cpu } = await withSubscriberCpu(subs, () => timedLoad(ctx, server, s.sends));
    const { result, usage } = value;
    const loadDoneAt = Date.now();
    const atLastAnswer = await subs?.mark(false);
    const finished = subs === undefined ? undefined : await subs.finish((await readStats(server.url)).uniqueProcessed, finishLimits);
    const checked = await finish(server, dbPath, result);
    if (finished !== undefined) {
      const stored = storedSeqs(dbPath).all;
      checked.problems.push(...gaveUpProblem(finished), ...findSubscriberMiscounts(finished.followers, () => stored));
    }
    const m = fromLoad(result, resourcesOf(usage), checked, server, "stream");
    if (finished !== undefined) m.notes.push(deliveryNote(finished));
    return { m, figure: ingestFigure(m, count, { finished, atLastAnswer, loadDoneAt, subscriberCpu: cpu }) };
  } finally {
    subs?.close();
    await server.stop();
  }
}

async function jetStreamIngest(s: SubscriberIngestScenario, ctx: RunContext, count: number): Promise<{ m: Measurement; figure: Omit<IngestFigure, "ratio"> }> {
  const stream = await BenchStream.create();
  const subs = count > 0 ? new SubscriberProcess() : undefined;
  try {
    const workload = workloadOf(s.sends);
    await ctx.loader.prepare({ kind: "jetstream", url: natsUrl, subjectPrefix: stream.subjectPrefix, workload, batch: s.batch, concurrency: s.concurrency, topics: benchTopics, cache: "shared" });
    await subs?.start({ kind: "jetstream", url: natsUrl, stream: stream.name, consumers: count, start: "new" });
    const nats = natsAsServer();
    const { value, cpu } = await withSubscriberCpu(subs, () => timedLoad(ctx, nats, s.sends));
    const { result, usage } = value;
    const loadDoneAt = Date.now();
    const atLastAnswer = await subs?.mark(false);
    const state = await stream.state();
    const finished = subs === undefined ? undefined : await subs.finish(state.lastSeq, finishLimits);
    const checked = jetStreamChecked(result, state);
    if (finished !== undefined) {
      const stored = seqRange(state.firstSeq, state.lastSeq);
      checked.problems.push(...gaveUpProblem(finished), ...findSubscriberMiscounts(finished.followers, () => stored));
    }
    const m = fromLoad(result, resourcesOf(usage), checked, nats, "call");
    m.notes.push(jetStreamNote);
    if (finished !== undefined) m.notes.push(deliveryNote(finished));
    return { m, figure: ingestFigure(m, count, { finished, atLastAnswer, loadDoneAt, subscriberCpu: cpu }) };
  } finally {
    subs?.close();
    await stream.remove();
  }
}

const jetStreamNote =
  "JetStream: latency per window of async publishes; file storage with nats-server's default sync (fsync every 2 minutes, not per message as tally's durability full), dedup by Nats-Msg-Id; server CPU is the local nats-server's";

/** What the subscribers of one ingest run did: their reports, how many each held as the last publish was answered, when that was (Date.now()), their process's CPU. */
interface SubscriberSide {
  finished: SubscribersFinished | undefined;
  atLastAnswer: number[] | undefined;
  loadDoneAt: number;
  subscriberCpu: number | undefined;
}

function ingestFigure(m: Measurement, count: number, side: SubscriberSide): Omit<IngestFigure, "ratio"> {
  const { finished, atLastAnswer, loadDoneAt, subscriberCpu } = side;
  const tail = finished === undefined ? 0 : tailSeconds(finished, loadDoneAt);
  const stored = m.uniqueStored;
  return {
    subscribers: count,
    eventsPerSecond: m.eventsPerSecond,
    stored,
    tailSeconds: tail,
    liveShare: atLastAnswer === undefined || stored === 0 ? 1 : Math.min(...atLastAnswer) / stored,
    allDeliveredPerSecond: stored / (m.elapsedSeconds + tail),
    ...(m.serverCpuPercent !== undefined && { serverCpuPercent: m.serverCpuPercent }),
    ...(subscriberCpu !== undefined && { subscriberCpuPercent: subscriberCpu }),
    ...(m.loaderCpuPercent !== undefined && { loaderCpuPercent: m.loaderCpuPercent }),
    ...(m.hostStealPercent !== undefined && { hostStealPercent: m.hostStealPercent }),
  };
}

/** Delivery latency of live subscribers, for a run's notes. */
function deliveryNote(finished: SubscribersFinished): string {
  const l = finished.latency;
  if (l.count === 0) return `${finished.followers.length} subscribers`;
  return `${finished.followers.length} subscribers, commit to delivery p50 ${(l.p50Us / 1000).toFixed(0)} ms, p99 ${(l.p99Us / 1000).toFixed(0)} ms`;
}

/** The count check of a JetStream run: what the acks said and what the stream holds, against what was sent. */
function jetStreamChecked(result: LoadResult, state: { messages: number }): Checked {
  const problems: string[] = [];
  const expect = (what: string, got: number, want: number) => {
    if (got !== want) problems.push(`${what}: expected ${want}, got ${got}`);
  };
  if (result.failedBatches > 0) problems.push(`${result.failedBatches} windows failed (their outcome is unknown)`);
  expect("messages in the stream", state.messages, result.distinct);
  expect("acks stored", result.accepted, result.distinct);
  expect("acks duplicate", result.duplicates, result.sends - result.distinct);
  return { uniqueStored: state.messages, duplicatesReported: result.duplicates, peakRssKiB: undefined, problems };
}

/**
 * One subscriber per topic while unary Publish offers a fixed rate, open
 * loop: a warm-up, then the measured part with the latencies recorded
 * afresh, then how far behind each subscriber was as the last publish was
 * answered.
 */
async function runFanout(s: FanoutScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const server = await startServer(dbPath, ctx.pass);
  const subs = new SubscriberProcess();
  const topics = numberedTopics(s.topics);
  const warmupSends = Math.round(s.rate * s.warmupSeconds);
  const sends = Math.round(s.rate * s.durationSeconds);
  try {
    await subs.start({ kind: "tally", target: server.url, topics, connections: fanoutConnections, start: "new", heartbeatMs: liveHeartbeatMs, latency: true });
    const spec: LoadSpec = { target: server.url, transport: "grpc", concurrency: fanoutMaxInFlight, rate: s.rate, openLoop: true };
    await ctx.loader.prepare({ kind: "load", spec, workload: distinctWorkload(warmupSends), batch: s.batch, topics, cache: "fresh" });
    const warmup = await ctx.loader.runLoad((done) => ctx.onProgress(done, warmupSends + sends));
    await subs.mark(true);
    await ctx.loader.prepare({ kind: "load", spec, workload: distinctWorkload(sends, warmupSends), batch: s.batch, topics, cache: "fresh" });
    const wrapped: RunContext = { ...ctx, onProgress: (done) => ctx.onProgress(warmupSends + done, warmupSends + sends) };
    const { value, cpu } = await withSubscriberCpu(subs, () => timedLoad(wrapped, server, sends));
    const { result, usage } = value;
    const atEnd = await subs.mark(false);
    const finished = await subs.finish((await readStats(server.url)).uniqueProcessed, finishLimits);
    const checked = await finish(server, dbPath, sumCounts(warmup, result));
    const stored = storedSeqs(dbPath).byTopic;
    checked.problems.push(...gaveUpProblem(finished), ...findSubscriberMiscounts(finished.followers, (r) => stored.get(r.topic)));
    const lags = finished.followers.map((f, i) => (stored.get(f.topic)?.count ?? 0) - atEnd[i]!);
    const maxLagAtEnd = Math.max(0, ...lags);
    const allReceived = finished.followers.every((f) => f.received === (stored.get(f.topic)?.count ?? 0));
    const m = fromLoad(result, resourcesOf(usage), checked, server, "call");
    const publishP99 = m.latency.p99Us;
    m.latency = finished.latency;
    m.latencyUnit = "delivery";
    m.offeredRate = s.rate;
    const delivered = finished.followers.reduce((sum, f) => sum + f.received, 0);
    m.subscribers = { fanout: { subscribers: topics.length, offeredRate: s.rate, delivered, maxLagAtEnd, keptUp: allReceived && maxLagAtEnd <= s.keptUpLag } };
    m.notes.push(
      `${topics.length} subscribers on ${fanoutConnections} connections, ${delivered} events delivered; latency from commit (received_at, ms) to arrival (Date.now() in the subscriber process), ms precision; at the last answer the furthest-behind subscriber lacked ${maxLagAtEnd} events of its topic (kept up: at most ${s.keptUpLag}); subscriber process ${cpu === undefined ? "?" : Math.round(cpu)}% CPU; Publish p99 ${(publishP99 / 1000).toFixed(1)} ms per call; measured after ${s.warmupSeconds} s of the same load`,
    );
    return m;
  } finally {
    subs.close();
    await server.stop();
  }
}

/** Reports a catch-up's progress: the fill's sends, then the events read. */
function catchupProgress(ctx: RunContext, stored: number, subs: SubscriberProcess): () => void {
  const timer = setInterval(() => ctx.onProgress(stored + subs.received, 2 * stored), 250);
  return () => clearInterval(timer);
}

/** Measures one subscriber reading from the start up to `head`, with the server's and the subscriber's CPU around it. */
async function timedCatchup(
  ctx: RunContext,
  server: BenchServer,
  stored: number,
  start: (subs: SubscriberProcess) => Promise<void>,
  head: number,
): Promise<{ finished: SubscribersFinished; figure: CatchupFigure; serverCpu: number | undefined; subscriberCpu: number | undefined }> {
  const subs = new SubscriberProcess();
  const stop = catchupProgress(ctx, stored, subs);
  try {
    const server0 = sampleProcess(server.pid);
    const { value: finished, cpu } = await withSubscriberCpu(subs, async () => {
      await start(subs);
      return await subs.finish(head, finishLimits);
    });
    const serverCpu = cpuPercent(server0, sampleProcess(server.pid));
    // Undefined when it never got there: the run fails its check, and its figures stay numbers for the reports.
    const seconds = finished.followers[0]?.secondsToTarget ?? 0;
    return { finished, figure: { stored: head, seconds, eventsPerSecond: seconds > 0 ? head / seconds : 0 }, serverCpu, subscriberCpu: cpu };
  } finally {
    stop();
    subs.close();
  }
}

/** A catch-up's Measurement: the reading rate as its events/s, the fill's counts for the check. */
function catchupMeasurement(fill: LoadResult, checked: Checked, run: Awaited<ReturnType<typeof timedCatchup>>, server: BenchServer): Measurement {
  const { figure } = run;
  return {
    eventsPerSecond: figure.eventsPerSecond,
    callsPerSecond: figure.seconds > 0 ? 1 / figure.seconds : 0,
    elapsedSeconds: figure.seconds,
    sends: fill.sends,
    distinct: fill.distinct,
    uniqueStored: checked.uniqueStored,
    duplicatesReported: checked.duplicatesReported,
    answers: { accepted: fill.accepted, duplicates: fill.duplicates, conflicts: fill.conflicts },
    calls: 1,
    latencyUnit: "delivery",
    latency: new LatencyRecorder().summary(),
    statusCodes: fill.statusCodes,
    errors: fill.errors,
    ...(run.serverCpu !== undefined && { serverCpuPercent: run.serverCpu }),
    ...(run.subscriberCpu !== undefined && { loaderCpuPercent: run.subscriberCpu }),
    problems: checked.problems,
    serverLog: [...server.problems],
    notes: [
      `filled with ${fill.sends.toLocaleString("en-US")} events at ${Math.round(fill.sends / fill.elapsedSeconds)} events/s (not timed), then one subscriber read all ${figure.stored.toLocaleString("en-US")} from the start in ${figure.seconds.toFixed(1)} s; the loader CPU column is the subscriber process's`,
    ],
    subscribers: { catchup: figure },
  };
}

async function runTallyCatchup(s: CatchupScenario, ctx: RunContext, dbPath: string): Promise<Measurement> {
  const server = await startServer(dbPath, ctx.pass);
  try {
    const spec: LoadSpec = { target: server.url, transport: "grpc-stream", concurrency: s.concurrency };
    await ctx.loader.prepare({ kind: "load", spec, workload: distinctWorkload(s.stored), batch: s.batch, topics: benchTopics, cache: "shared" });
    const fill = await ctx.loader.runLoad((done) => ctx.onProgress(done, 2 * s.stored));
    const head = (await readStats(server.url)).uniqueProcessed;
    const run = await timedCatchup(
      ctx,
      server,
      s.stored,
      (subs) => subs.start({ kind: "tally", target: server.url, topics: [""], connections: 1, start: "beginning", heartbeatMs: liveHeartbeatMs, latency: false }, head),
      head,
    );
    const checked = await finish(server, dbPath, fill);
    const stored = storedSeqs(dbPath).all;
    checked.problems.push(...gaveUpProblem(run.finished), ...findSubscriberMiscounts(run.finished.followers, () => stored));
    return catchupMeasurement(fill, checked, run, server);
  } finally {
    await server.stop();
  }
}

async function runJetStreamCatchup(s: CatchupScenario, ctx: RunContext): Promise<Measurement> {
  const stream = await BenchStream.create();
  try {
    await ctx.loader.prepare({ kind: "jetstream", url: natsUrl, subjectPrefix: stream.subjectPrefix, workload: distinctWorkload(s.stored), batch: s.batch, concurrency: s.concurrency, topics: benchTopics, cache: "shared" });
    const fill = await ctx.loader.runLoad((done) => ctx.onProgress(done, 2 * s.stored));
    const state = await stream.state();
    const nats = natsAsServer();
    const run = await timedCatchup(ctx, nats, s.stored, (subs) => subs.start({ kind: "jetstream", url: natsUrl, stream: stream.name, consumers: 1, start: "beginning" }, state.lastSeq), state.lastSeq);
    const checked = jetStreamChecked(fill, state);
    checked.problems.push(...gaveUpProblem(run.finished), ...findSubscriberMiscounts(run.finished.followers, () => seqRange(state.firstSeq, state.lastSeq)));
    const m = catchupMeasurement(fill, checked, run, nats);
    m.notes.push(jetStreamNote);
    return m;
  } finally {
    await stream.remove();
  }
}
