#!/usr/bin/env node
/**
 * First throughput figure: events/s through PublishStream against the raw
 * SQLite insert rate of the same events, measured in one run so the ratio
 * means something on a shared machine.
 *
 *   node dist/src/cli/stream-throughput.js [--events 200000] [--batch 500] [--durability full]
 */
import { create } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PublishStreamRequestSchema, PublishStreamResponseSchema, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { clientStream, encodeFrames } from "./load/grpc-frames.js";
import type { Durability } from "../config.js";
import { createGroupAppender } from "../store/append.js";
import { openForWriting } from "../store/schema.js";
import { validateBatch } from "../validate.js";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "200000" },
    batch: { type: "string", default: "500" },
    durability: { type: "string", default: "full" },
    "dup-rate": { type: "string", default: "0.2" },
  },
});
const sends = Number(values.events);
const batchSize = Number(values.batch);
const durability = values.durability as Durability;
const dupRate = Number(values["dup-rate"]);

const topics = ["orders", "payments", "users", "inventory"];
const sources = ["checkout", "billing", "auth", "warehouse"];

/** Seed-shaped events: 4 topics, 4 sources, UUID ids, a ~150-byte payload; dupRate of the sends re-send earlier events. */
function workload(): Event[] {
  const unique = Math.round(sends * (1 - dupRate));
  const events: Event[] = [];
  for (let i = 0; i < unique; i++) {
    events.push({
      $typeName: "aggregator.v1.Event",
      topic: topics[i % 4]!,
      eventId: randomUUID(),
      timestamp: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(1_761_300_000 + i), nanos: 0 },
      source: sources[(i >> 2) % 4]!,
      payload: { user_id: `user-${i % 1000}`, action: "purchase", amount: (i % 997) * 1.5, currency: "EUR", items: [i % 7, i % 11], note: "seed-shaped payload" },
    });
  }
  const all = [...events];
  for (let i = unique; i < sends; i++) all.push(events[Math.floor(Math.random() * unique)]!);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all;
}

function rawInsertRate(events: Event[], dir: string): number {
  const db = openForWriting(join(dir, "raw.db"), durability);
  const append = createGroupAppender(db);
  const batches = [];
  for (let i = 0; i < events.length; i += batchSize) {
    const { records } = validateBatch(events.slice(i, i + batchSize), { maxBatch: batchSize, maxPayloadBytes: 65536 });
    batches.push(records.flatMap((r) => [r.topic, r.eventId, r.ts, r.source, r.payload]));
  }
  const started = performance.now();
  for (const fields of batches) append([fields]);
  const seconds = (performance.now() - started) / 1000;
  db.close();
  return events.length / seconds;
}

async function streamRate(events: Event[], dir: string): Promise<{ rate: number; accepted: bigint; duplicates: bigint }> {
  const entry = join(fileURLToPath(import.meta.url), "..", "..", "main.js");
  // TALLY_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=prof", profiles the server.
  const nodeArgs = (process.env.TALLY_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const server = spawn(process.execPath, [...nodeArgs, entry, "--port", "0", "--db", join(dir, "server.db"), "--durability", durability], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve) => {
    createInterface({ input: server.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === "listening") resolve(entry.port!);
    });
  });
  const batches = [];
  for (let i = 0; i < events.length; i += batchSize) batches.push(create(PublishStreamRequestSchema, { events: events.slice(i, i + batchSize) }));
  const frames = encodeFrames(PublishStreamRequestSchema, batches);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const started = performance.now();
  const totals = await clientStream(session, "/aggregator.v1.AggregatorService/PublishStream", frames, PublishStreamResponseSchema);
  const seconds = (performance.now() - started) / 1000;
  session.close();
  server.kill("SIGTERM");
  await new Promise((resolve) => server.once("exit", resolve));
  return { rate: events.length / seconds, accepted: totals.accepted, duplicates: totals.duplicates };
}

const dir = mkdtempSync(join(tmpdir(), "tally-throughput-"));
try {
  const events = workload();
  const raw = rawInsertRate(events, dir);
  const stream = await streamRate(events, dir);
  console.log(
    JSON.stringify({
      sends,
      batch: batchSize,
      durability,
      stream_events_per_s: Math.round(stream.rate),
      raw_sqlite_events_per_s: Math.round(raw),
      ratio: Number((stream.rate / raw).toFixed(3)),
      accepted: Number(stream.accepted),
      duplicates: Number(stream.duplicates),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
