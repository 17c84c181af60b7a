#!/usr/bin/env node
/**
 * tally-publisher: a producer simulator. Publishes seeded, seed-shaped events
 * (a share of them re-sends) over any of tally's transports, then reads Stats
 * and says whether the service counted exactly what was sent; exits 1 if not.
 *
 *   npm run publisher -- --events 20000 --transport rest --concurrency 50
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { randomInt } from "node:crypto";
import { makeBatches, transports, type Transport } from "./load/batches.js";
import { EventCache } from "./load/event-cache.js";
import { startProgress } from "./load/progress.js";
import { runLoad } from "./load/run-load.js";
import { RunRecord, type LoadResult } from "./load/run-record.js";
import { checkCounts, readStats } from "./load/stats-client.js";
import { buildWorkload } from "./load/workload.js";

interface PublisherOptions {
  target: string;
  events: number;
  dupRate: number;
  topics: number;
  batch: number;
  concurrency: number;
  transport: Transport;
  rate: number | undefined;
  duration: number | undefined;
  seed: number;
}

function positiveInteger(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
  return Number(text);
}

function positiveNumber(text: string): number {
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) throw new InvalidArgumentError(`expected a positive number, got "${text}"`);
  return value;
}

function nonNegativeInteger(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`expected a non-negative integer, got "${text}"`);
  return Number(text) >>> 0;
}

function share(text: string): number {
  const value = Number(text);
  if (!(value >= 0 && value < 1)) throw new InvalidArgumentError(`expected a share in [0, 1), got "${text}"`);
  return value;
}

function parseOptions(argv: string[]): PublisherOptions {
  const command = new Command("tally-publisher")
    .description("Publish seed-shaped events to tally and check that it counted exactly what was sent")
    .option("--target <url>", "server base URL", "http://127.0.0.1:8080")
    .option("--events <n>", "events to send, re-sends included", positiveInteger, 10_000)
    .option("--dup-rate <share>", "share of sends that re-send an earlier event", share, 0.2)
    .option("--topics <n>", "number of topics", positiveInteger, 4)
    .option("--batch <n>", "events per request or stream message", positiveInteger, 100)
    .option("--concurrency <n>", "requests in flight, or concurrent streams for grpc-stream", positiveInteger, 4)
    .addOption(new Option("--transport <name>", "how to publish").choices(transports).default("grpc-stream"))
    .option("--rate <events/s>", "cap on events per second", positiveNumber)
    .option("--duration <seconds>", "stop sending after this long", positiveNumber)
    .option("--seed <n>", "seed for event ids and order (random by default, so ids are fresh)", nonNegativeInteger)
    .parse(argv, { from: "user" });
  const o = command.opts<Omit<PublisherOptions, "seed"> & { seed?: number }>();
  return { ...o, seed: o.seed ?? randomInt(2 ** 31) };
}

function describe(result: LoadResult, o: PublisherOptions): string[] {
  const l = result.latency;
  const ms = (us: number) => (us / 1000).toFixed(2);
  const perSecond = result.elapsedSeconds > 0 ? Math.round(result.sends / result.elapsedSeconds) : 0;
  return [
    `sent ${result.sends} events (${result.distinct} distinct, ${result.sends - result.distinct} re-sends) in ${result.calls} ${o.transport === "grpc-stream" ? "streams" : "requests"} over ${o.transport}, ${result.elapsedSeconds.toFixed(2)} s: ${perSecond} events/s`,
    `answers: ${result.accepted} accepted, ${result.duplicates} duplicates, ${result.conflicts} conflicts`,
    `latency per ${o.transport === "grpc-stream" ? "stream" : "request"}: p50 ${ms(l.p50Us)} ms, p90 ${ms(l.p90Us)} ms, p99 ${ms(l.p99Us)} ms, max ${ms(l.maxUs)} ms`,
    `status: ${Object.entries(result.statusCodes)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    ...Object.entries(result.errors).map(([text, n]) => `error x${n}: ${text}`),
  ];
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const before = await readStats(o.target);
  const workload = buildWorkload({ seed: o.seed, sends: o.events, dupRate: o.dupRate, indexBase: 0 });
  // Bodies are encoded as they are sent: a simulator may run for hours, and memory must not follow it.
  const batches = makeBatches(o.transport, workload, o.batch, new EventCache(o.seed, o.topics));
  const record = new RunRecord(workload);
  const progress = startProgress(o.events, () => record.written);
  let result: LoadResult;
  try {
    result = await runLoad(
      { target: o.target, transport: o.transport, concurrency: o.concurrency, rate: o.rate, durationSeconds: o.duration },
      batches,
      record,
    );
  } finally {
    progress.stop();
  }
  const after = await readStats(o.target);

  for (const line of describe(result, o)) console.log(line);
  const check = checkCounts(before, after, result);
  console.log(`server counters (seed ${o.seed}):`);
  for (const line of check.lines) console.log(`  ${line}`);
  if (result.failedBatches > 0) {
    console.log(`FAIL: ${result.failedBatches} batches were given up on; their events may or may not be stored`);
    return 1;
  }
  if (!check.ok) {
    console.log("FAIL: the service did not count exactly what was sent (another producer publishing at the same time, or a reused --seed, also moves the counters)");
    return 1;
  }
  console.log("ok: the service counted exactly what was sent");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tally-publisher: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
