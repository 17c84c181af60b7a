import Database from "better-sqlite3";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { PublishResult_Status as Status } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { startServer, tempDir } from "../support/server.js";

/** Reads the database file directly, as an operator would with sqlite3. */
function inspect(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.prepare("SELECT seq, topic, event_id FROM events ORDER BY seq").all() as { seq: number; topic: string; event_id: string }[];
    const counters = db.prepare("SELECT * FROM counters").get() as { received: number; unique_processed: number; duplicate_dropped: number; conflicts: number };
    const topicTotal = (db.prepare("SELECT coalesce(sum(count), 0) AS n FROM topic_counts").get() as { n: number }).n;
    return { rows, counters, topicTotal };
  } finally {
    db.close();
  }
}

function expectConsistent(dbPath: string) {
  const { rows, counters, topicTotal } = inspect(dbPath);
  expect(counters.unique_processed).toBe(rows.length);
  expect(counters.received).toBe(counters.unique_processed + counters.duplicate_dropped + counters.conflicts);
  expect(topicTotal).toBe(rows.length);
  expect(new Set(rows.map((r) => `${r.topic}\u0000${r.event_id}`)).size).toBe(rows.length);
  return rows;
}

describe("durability across restarts", () => {
  it("keeps events and counters through a graceful restart of the server process", async () => {
    const first = await startServer();
    const client = grpcClient(first.url);
    const events = Array.from({ length: 300 }, (_, i) => makeEvent({ topic: i % 2 ? "odd" : "even" }));
    await client.publishStream(
      (async function* () {
        for (let i = 0; i < events.length; i += 100) yield { events: events.slice(i, i + 100) };
      })(),
    );
    await client.publish({ events: events.slice(0, 10) });
    const before = await client.stats({});
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await startServer({ dbPath: first.dbPath });
    const again = grpcClient(second.url);
    const after = await again.stats({});
    expect(after).toMatchObject({
      received: before.received,
      uniqueProcessed: 300n,
      duplicateDropped: 10n,
      topics: before.topics,
    });
    const page = await again.events({ limit: 1000 });
    expect(page.events.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
    const resend = await again.publish({ events: events.slice(0, 50) });
    expect(resend.duplicates).toBe(50);
    expect(await second.stop("SIGINT")).toBe(0);
    expectConsistent(first.dbPath);
  });

  it("loses no acknowledged event when the server is killed with SIGKILL under load", async () => {
    const server = await startServer();
    const acked: Event[] = [];
    const attempted: Event[] = [];
    let killed = false;
    let kill: () => void = () => undefined;
    const killedWhenEnoughAcked = new Promise<void>((resolve) => (kill = resolve));

    async function producer(id: number) {
      const client = grpcClient(server.url);
      for (let round = 0; !killed; round++) {
        const batch = Array.from({ length: 25 }, () => makeEvent({ topic: `crash-${id % 2}` }));
        attempted.push(...batch);
        try {
          const response = await client.publish({ events: batch });
          expect(response.results.every((r) => r.status === Status.ACCEPTED)).toBe(true);
          acked.push(...batch);
          if (acked.length >= 2_000) kill();
        } catch {
          return; // the server died under us: this batch was never acknowledged
        }
      }
    }
    const producers = Array.from({ length: 4 }, (_, i) => producer(i));
    await killedWhenEnoughAcked;
    killed = true;
    await server.stop("SIGKILL");
    await Promise.all(producers);

    const rows = expectConsistent(server.dbPath);
    const stored = new Set(rows.map((r) => r.event_id));
    const lost = acked.filter((e) => !stored.has(e.eventId));
    expect(lost).toHaveLength(0);

    const restarted = await startServer({ dbPath: server.dbPath });
    const client = grpcClient(restarted.url);
    let newlyStored = 0;
    for (let i = 0; i < acked.length; i += 1000) {
      const response = await client.publish({ events: acked.slice(i, i + 1000) });
      newlyStored += response.accepted;
    }
    expect(newlyStored).toBe(0);
    // Batches in flight at the kill were either committed whole or not at all.
    const unacked = attempted.filter((e) => !acked.includes(e));
    const response = unacked.length > 0 ? await client.publish({ events: unacked.slice(0, 1000) }) : undefined;
    if (response) expect(response.accepted + response.duplicates).toBe(Math.min(unacked.length, 1000));
    expect(await restarted.stop()).toBe(0);
    expectConsistent(server.dbPath);
  });
});

describe("durability normal", () => {
  /** Rows in the database file alone, as a copy without its WAL shows them. */
  function rowsInMainFile(dbPath: string): number {
    const copy = join(tempDir(), "main-file-only.db");
    copyFileSync(dbPath, copy);
    const db = new Database(copy, { readonly: true });
    try {
      const hasTable = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'events'").get() as { n: number };
      return hasTable.n === 0 ? 0 : (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    } finally {
      db.close();
    }
  }

  it("checkpoints the WAL into the database file on a thread of its own while the server runs", async () => {
    const server = await startServer({ args: ["--durability", "normal"] });
    const client = grpcClient(server.url);
    const events = Array.from({ length: 1_000 }, () => makeEvent());
    for (let i = 0; i < events.length; i += 100) await client.publish({ events: events.slice(i, i + 100) });
    // The writer's own checkpoint waits for 10,000 WAL pages, which these events come nowhere near.
    await vi.waitFor(() => expect(rowsInMainFile(server.dbPath)).toBe(events.length), { timeout: 10_000, interval: 50 });
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(expectConsistent(server.dbPath)).toHaveLength(events.length);
  });
});
