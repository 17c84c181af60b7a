/**
 * Subscribers that stop reading while producers publish (issue "Subscribers
 * and durable consumers": a subscriber is a cursor, not a queue). Raw HTTP/2
 * gRPC subscriptions (node:http2) are paused, so flow control holds the
 * server's writes; producers publish a backlog of ~1 KiB events hundreds of
 * times the recent-commit memory (8 MiB) and the memory budget (64 MiB).
 * The claims: the server's peak RSS stays under the abuse suite's bound and
 * its memory budget holds; GET /health answers throughout; once the
 * subscribers read again each receives every event exactly once, in seq
 * order, and says it has caught up.
 *
 * Each phase (the stall, the catch-up) is measured on its own with the abuse
 * suite's watcher, and one console line gives the figures. The default volume
 * (100,000 events, ~105 MiB per subscriber) keeps the test near two minutes;
 * TALLY_SLOW_EVENTS=300000 and TALLY_SLOW_SUBSCRIBERS change it.
 */
import { create } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AggregatorService, PublishStreamRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { defaults } from "../../src/app/config.js";
import { watch, type Watched } from "../abuse/watcher.js";
import { makeEvent } from "../support/events.js";
import { RawSubscription } from "../support/raw-subscriber.js";
import { startServer, type TestServer } from "../support/server.js";

function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  return text === undefined || text === "" ? fallback : Number(text);
}

const totalEvents = envNumber("TALLY_SLOW_EVENTS", 100_000);
const subscriberCount = envNumber("TALLY_SLOW_SUBSCRIBERS", 20);
const producerCount = 4;
/** ~200 KiB: a whole message fits the 256 KiB stream window the server grants (src/http/protocol-settings.ts). */
const batchEvents = 200;
const topic = "slow.backlog";
/** The abuse suite's bound (tests/abuse/harness.ts, TALLY_ABUSE_MAX_RSS_MIB): every hostile load there stays under it. */
const maxRssMiB = envNumber("TALLY_ABUSE_MAX_RSS_MIB", 384);
/** A payload of ~1 KiB serialized: {"n":123,"blob":"xxx..."}. */
const blob = "x".repeat(1000);
const MiB = 1024 * 1024;

let server: TestServer;
const subscribers: RawSubscription[] = [];

beforeAll(async () => {
  // The default memory budget, the one the server runs with unless told otherwise. Durability normal:
  // what is measured is the subscribers, and the backlog is published sooner without an fsync per commit.
  server = await startServer({ args: ["--durability", "normal"] });
});

afterAll(async () => {
  for (const s of subscribers) s.close();
  await server.stop();
});

/** Watches the server (RSS every 50 ms, VmHWM reset at the start, GET /health every 100 ms) while `phase` runs. */
async function measured<T>(phase: () => Promise<T>): Promise<{ result: T; watched: Watched; peakRssMiB: number; seconds: number; cpuSeconds: number }> {
  const pid = server.process.pid!;
  const stop = await watch({ pid, port: server.port, probeAddress: "127.0.0.1", probeIntervalMs: 100, probeTimeoutMs: 10_000, sampleIntervalMs: 50 });
  const started = performance.now();
  const cpuBefore = cpuSeconds(pid);
  let result: T;
  let watched: Watched;
  try {
    result = await phase();
  } finally {
    watched = await stop();
  }
  const peakRssMiB = Math.max(watched.peakRssMiB, watched.hwmReset ? watched.hwmMiB : 0);
  return { result, watched, peakRssMiB, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSeconds(pid) - cpuBefore };
}

function health(w: Watched): string {
  return `/health ${w.probes} probes, ${w.probeFailures} failed, median ${w.medianHealthMs.toFixed(0)} ms, worst ${w.worstHealthMs.toFixed(0)} ms`;
}

/** Publishes the backlog from `producerCount` PublishStream calls; reads Stats every 20 batches of the first, into `held`. */
async function publishBacklog(client: Client<typeof AggregatorService>, held: number[]): Promise<number> {
  const perProducer = Math.ceil(totalEvents / producerCount);
  const producers = Array.from({ length: producerCount }, async (_, p) => {
    const producer = createClient(AggregatorService, createGrpcTransport({ baseUrl: server.url }));
    const first = p * perProducer;
    const last = Math.min(totalEvents, first + perProducer);
    const response = await producer.publishStream(
      (async function* () {
        for (let at = first, sent = 0; at < last; at += batchEvents, sent++) {
          const events = [];
          for (let i = at; i < Math.min(last, at + batchEvents); i++) events.push(makeEvent({ topic, eventId: `e-${i}`, payload: { n: i, blob } }));
          yield create(PublishStreamRequestSchema, { events });
          if (p === 0 && sent % 20 === 0) held.push(Number((await client.stats({})).memoryHeldBytes));
        }
      })(),
    );
    return Number(response.accepted);
  });
  return (await Promise.all(producers)).reduce((a, b) => a + b, 0);
}

it(
  `${subscriberCount} subscribers that read nothing while ${totalEvents} events of ~1 KiB are published keep the server's memory bounded, then each receives every event once, in order`,
  async () => {
    const client = createClient(AggregatorService, createGrpcTransport({ baseUrl: server.url }));
    for (let i = 0; i < subscriberCount; i++) subscribers.push(RawSubscription.open(server.url, { topic }));
    // Open and live: each has read all there is (nothing yet) before it stops reading.
    await Promise.all(subscribers.map((s) => s.until((x) => x.heartbeats.some((h) => h.caughtUp), "its first caught-up heartbeat")));
    for (const s of subscribers) s.pause();
    const rssBeforeMiB = rssMiB(server.process.pid!);

    // Stalled: producers publish the backlog while nobody reads.
    const heldWhileStalled: number[] = [];
    const stall = await measured(async () => {
      const accepted = await publishBacklog(client, heldWhileStalled);
      // Still stalled, the server answers.
      const res = await fetch(`${server.url}/health`);
      const stats = await client.stats({});
      heldWhileStalled.push(Number(stats.memoryHeldBytes));
      return { accepted, healthStatus: res.status, healthBody: await res.json(), stored: Number(stats.uniqueProcessed) };
    });
    // What the clients had taken of the backlog: nothing read, at most a flow-control window buffered.
    const readWhileStalled = Math.max(...subscribers.map((s) => s.events));
    const maxUnread = Math.max(...subscribers.map((s) => s.unreadBytes));

    // Reading again: every subscriber catches up; Stats is read at each tenth of the first one's way.
    const heldWhileCatchingUp: number[] = [];
    const catchUp = await measured(async () => {
      for (const s of subscribers) s.resume();
      const sampling = (async () => {
        for (let tenth = 1; tenth <= 10; tenth++) {
          await subscribers[0]!.until((x) => x.events >= (totalEvents * tenth) / 10, `${tenth}0% of the events`);
          heldWhileCatchingUp.push(Number((await client.stats({})).memoryHeldBytes));
        }
      })();
      await Promise.all(
        subscribers.map((s) =>
          s.until((x) => x.events >= totalEvents && x.heartbeats.filter((h) => h.caughtUp).length >= 2, "every event and a caught-up heartbeat after them"),
        ),
      );
      await sampling;
    });

    const maxHeld = (samples: number[]) => (Math.max(...samples) / MiB).toFixed(1);
    console.info(
      `slow subscriber: RSS ${rssBeforeMiB.toFixed(1)} MiB before; peak RSS ${stall.peakRssMiB.toFixed(1)} MiB while ${subscriberCount} subscribers stalled and ${totalEvents} events of ~1 KiB ` +
        `(${(subscribers[0]!.bytes / MiB).toFixed(0)} MiB per subscriber) were published in ${stall.seconds.toFixed(1)} s ` +
        `(${Math.round(totalEvents / stall.seconds)} events/s, server CPU ${stall.cpuSeconds.toFixed(1)} s), memory_held_bytes at most ${maxHeld(heldWhileStalled)} MiB, ` +
        `client-side unread at most ${(maxUnread / 1024).toFixed(0)} KiB, ${health(stall.watched)}; ` +
        `peak RSS ${catchUp.peakRssMiB.toFixed(1)} MiB while they caught up in ${catchUp.seconds.toFixed(1)} s ` +
        `(${Math.round((totalEvents * subscriberCount) / catchUp.seconds)} deliveries/s, server CPU ${catchUp.cpuSeconds.toFixed(1)} s), ` +
        `memory_held_bytes at most ${maxHeld(heldWhileCatchingUp)} MiB, ${health(catchUp.watched)}; ` +
        `bound ${maxRssMiB} MiB, budget ${(defaults.memoryBudgetBytes / MiB).toFixed(0)} MiB`,
    );

    expect(stall.result).toMatchObject({ accepted: totalEvents, healthStatus: 200, healthBody: { status: "healthy" }, stored: totalEvents });
    // The stall was real: the clients had read nothing, and buffered no more than a flow-control window or so.
    expect(readWhileStalled).toBe(0);
    expect(maxUnread).toBeLessThan(1 * MiB);
    expect(stall.peakRssMiB, "peak RSS while stalled").toBeLessThan(maxRssMiB);
    expect(Math.max(...heldWhileStalled)).toBeLessThanOrEqual(defaults.memoryBudgetBytes);
    expect(stall.watched.probeFailures, JSON.stringify(stall.watched.probeFailureReasons)).toBe(0);
    for (const s of subscribers) {
      expect({ events: s.events, first: s.firstSeq, last: s.lastSeq, gaps: s.gaps, duplicates: s.duplicates, outOfOrder: s.outOfOrder, status: s.status }).toEqual({
        events: totalEvents,
        first: 1,
        last: totalEvents,
        gaps: 0,
        duplicates: 0,
        outOfOrder: 0,
        status: undefined,
      });
    }
    expect(catchUp.peakRssMiB, "peak RSS while catching up").toBeLessThan(maxRssMiB);
    expect(Math.max(...heldWhileCatchingUp)).toBeLessThanOrEqual(defaults.memoryBudgetBytes);
    expect(catchUp.watched.probeFailures, JSON.stringify(catchUp.watched.probeFailureReasons)).toBe(0);
  },
  15 * 60_000,
);

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** User and system CPU time the process has used, seconds (/proc/PID/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
