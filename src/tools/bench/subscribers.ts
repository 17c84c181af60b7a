/**
 * The bench's subscriber process (forked by subscribers-client.ts): it
 * opens the subscriptions a job asks for, tells the orchestrator when they
 * are in place, counts everything they receive, and reports per subscriber
 * once each holds everything up to the seq it is told.
 */
import type http2 from "node:http2";
import { LatencyRecorder } from "../load/latency.js";
import type { Follower, LatencySink } from "./follower.js";
import { followJetStream } from "./jetstream-subscriber.js";
import { subscribeStart } from "./subscribe-frames.js";
import type { FromSubscribers, SubscribeJob, ToSubscribers } from "./subscribers-protocol.js";
import { connectSubscriberSession, followTally } from "./tally-subscriber.js";

/** How often progress is reported, as the loader does. */
const progressMs = 250;

/** Subscriptions not in place by then are not going to be (a tally subscription has its first heartbeat within heartbeat_ms). */
const readyTimeoutMs = 30_000;

const sink: LatencySink = { recorder: undefined };
let followers: Follower[] = [];
let sessions: http2.ClientHttp2Session[] = [];
let progressTimer: NodeJS.Timeout | undefined;

function send(message: FromSubscribers): void {
  process.send!(message);
}

async function start(job: SubscribeJob, target: number | undefined): Promise<void> {
  if (job.kind === "tally") {
    sink.recorder = job.latency ? new LatencyRecorder() : undefined;
    sessions = await Promise.all(Array.from({ length: Math.min(job.connections, job.topics.length) }, () => connectSubscriberSession(job.target)));
    const start = job.start === "new" ? subscribeStart.new : subscribeStart.beginning;
    followers = job.topics.map((topic, k) => followTally(sessions[k % sessions.length]!, { topic, start, heartbeatMs: job.heartbeatMs }, sink));
  } else {
    followers = Array.from({ length: job.consumers }, () => followJetStream(job.url, job.stream, job.start));
  }
  // A catch-up's clock runs from subscribing: the target is set before anything can arrive.
  const reached = target === undefined ? [] : followers.map((f) => f.reach(target));
  for (const r of reached) r.catch(() => undefined);
  progressTimer = setInterval(() => send({ type: "progress", received: receivedInAll() }), progressMs);
  // Live subscriptions must be in place before the load starts; a catch-up's are timed from their request instead.
  if (job.kind === "jetstream" || job.start === "new") {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(followers.map((f) => f.ready)),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`subscriptions not in place within ${readyTimeoutMs} ms`)), readyTimeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }
  send({ type: "ready" });
}

/** Events received so far, all subscribers together. */
function receivedInAll(): number {
  return followers.reduce((sum, f) => sum + f.report.received, 0);
}

/** Resolves with a reason once nothing has been received for stallMs, or capMs have passed. */
function giveUpWhen(stallMs: number, capMs: number, stop: Promise<unknown>): Promise<string | undefined> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let last = receivedInAll();
    let changedAt = startedAt;
    const end = (reason: string | undefined) => {
      clearInterval(timer);
      resolve(reason);
    };
    const timer = setInterval(() => {
      const now = performance.now();
      const received = receivedInAll();
      if (received !== last) {
        last = received;
        changedAt = now;
      } else if (now - changedAt >= stallMs) end(`no subscriber received anything for ${Math.round(stallMs / 1000)} s`);
      if (now - startedAt >= capMs) end(`not every subscriber held everything ${Math.round(capMs / 1000)} s after the publishing`);
    }, 1_000);
    void stop.finally(() => end(undefined));
  });
}

async function finish(target: number, stallMs: number, capMs: number): Promise<void> {
  const all = Promise.allSettled(followers.map((f) => f.reach(target)));
  const gaveUp = await Promise.race([all.then(() => undefined), giveUpWhen(stallMs, capMs, all)]);
  clearInterval(progressTimer);
  await Promise.all(followers.map((f) => f.close()));
  for (const s of sessions) s.close();
  send({
    type: "finished",
    followers: followers.map((f) => f.report),
    latency: (sink.recorder ?? new LatencyRecorder()).summary(),
    gaveUp,
  });
}

process.on("message", (message: ToSubscribers) => {
  void (async () => {
    try {
      if (message.type === "start") await start(message.job, message.target);
      else if (message.type === "mark") {
        const received = followers.map((f) => f.report.received);
        if (message.resetLatency && sink.recorder !== undefined) sink.recorder = new LatencyRecorder();
        send({ type: "marked", received });
      } else if (message.type === "finish") await finish(message.target, message.stallMs, message.capMs);
      else process.exit(0);
    } catch (err) {
      send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  })();
});

// The orchestrator gone means nobody reads our results: stop.
process.on("disconnect", () => process.exit(0));
