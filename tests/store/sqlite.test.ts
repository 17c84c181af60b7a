import Database from "better-sqlite3";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { AppendStatus, type EventStore } from "../../src/store/types.js";
import { tempDir } from "../support/server.js";
import { describeEventStoreContract, readAll } from "./contract.js";

/**
 * The compiled module, not the TypeScript source: the store starts its writer
 * from ./writer-worker.js beside it, which exists only in dist/
 * (tests/global-setup.ts builds it before any test runs).
 */
const { openStore } = (await import(new URL("../../dist/src/store/open.js", import.meta.url).href)) as typeof import("../../src/store/open.js");

const silent = pino({ level: "silent" });

function openSqlite(dir: string) {
  return openStore({ dbPath: join(dir, "aggregator.db"), durability: "normal" }, silent);
}

describeEventStoreContract("SQLite", openSqlite);

/**
 * The schema as version 1 of tally wrote it: migration 0, which is never
 * edited once released, so a database on disk may still have exactly this.
 */
const { migrations } = (await import(new URL("../../dist/src/store/sqlite/schema.js", import.meta.url).href)) as typeof import("../../src/store/sqlite/schema.js");
const schemaV1 = migrations[0]!;

/** Writes a version 1 database by hand: these events (topic, event_id), their topic counts, and counters that also count some duplicates and conflicts. */
function writeV1Database(dbPath: string, events: [topic: string, eventId: string][], rejected: { duplicates: number; conflicts: number }): void {
  const db = new Database(dbPath);
  try {
    db.exec(schemaV1);
    db.pragma("user_version = 1");
    const insert = db.prepare("INSERT INTO events (topic, event_id, ts, source, payload, received_at) VALUES (?, ?, ?, ?, ?, ?)");
    const bump = db.prepare("INSERT INTO topic_counts (topic, count) VALUES (?, 1) ON CONFLICT (topic) DO UPDATE SET count = count + 1");
    db.transaction(() => {
      for (const [topic, eventId] of events) {
        insert.run(topic, eventId, "2025-10-24T10:00:00.000000000Z", "v1", `{"id":"${eventId}"}`, "2025-10-24T10:00:01.000Z");
        bump.run(topic);
      }
      db.prepare("UPDATE counters SET received = ?, unique_processed = ?, duplicate_dropped = ?, conflicts = ? WHERE id = 1").run(
        events.length + rejected.duplicates + rejected.conflicts,
        events.length,
        rejected.duplicates,
        rejected.conflicts,
      );
    })();
  } finally {
    db.close();
  }
}

function newEvent(topic: string, eventId: string) {
  return { topic, eventId, ts: "2025-10-24T11:00:00.000000000Z", source: "v2", payload: `{"id":"${eventId}"}` };
}

describe("SQLite store", () => {
  it("refuses a file that is not a database with a StoreError of kind unusable", async () => {
    const dir = tempDir("tally-store-");
    writeFileSync(join(dir, "aggregator.db"), "this is a text file, not an SQLite database\n".repeat(200));
    const err: unknown = await openSqlite(dir).then(
      async (store) => {
        await store.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // The class from dist/ is not the one in src/, so the check is by name and kind.
    expect((err as Error).constructor.name).toBe("StoreError");
    expect((err as { kind?: unknown }).kind).toBe("unusable");
  });

  it("migrates a database written by schema version 1: topicCount and topTopics count the topics stored before, and appends keep them right", async () => {
    const dir = tempDir("tally-store-");
    const dbPath = join(dir, "aggregator.db");
    const v1Events: [string, string][] = [
      ["orders", "o1"],
      ["audit", "a1"],
      ["orders", "o2"],
      ["payments", "p1"],
      ["orders", "o3"],
      ["audit", "a2"],
    ];
    writeV1Database(dbPath, v1Events, { duplicates: 2, conflicts: 1 });

    // The store open at the moment, closed in finally should the test fail first.
    let open: EventStore | undefined;
    try {
      const store = await openSqlite(dir);
      open = store;
      expect(await store.stats(10)).toEqual({
        received: 9,
        uniqueProcessed: 6,
        duplicateDropped: 2,
        conflicts: 1,
        topicCount: 3,
        topTopics: [
          { name: "orders", count: 3 },
          { name: "audit", count: 2 },
          { name: "payments", count: 1 },
        ],
      });
      expect(await store.stats(1)).toMatchObject({ topicCount: 3, topTopics: [{ name: "orders", count: 3 }] });
      expect(await store.topics("", 2)).toEqual({
        topics: [
          { name: "audit", count: 2 },
          { name: "orders", count: 3 },
        ],
        hasMore: true,
      });
      expect(await store.topics("orders", 2)).toEqual({ topics: [{ name: "payments", count: 1 }], hasMore: false });
      expect((await readAll(store)).map((r) => [r.topic, r.eventId])).toEqual(v1Events);

      // New topics, existing ones, and a duplicate and a conflict of events stored by version 1.
      const result = await store.append([
        newEvent("payments", "p2"),
        newEvent("payments", "p3"),
        newEvent("payments", "p4"),
        newEvent("billing", "b1"),
        { ...newEvent("orders", "o1"), source: "v1", ts: "2025-10-24T10:00:00.000000000Z" },
        { ...newEvent("audit", "a1"), payload: '{"id":"changed"}' },
      ]);
      const { accepted, duplicate, conflict } = AppendStatus;
      expect([...result.statuses]).toEqual([accepted, accepted, accepted, accepted, duplicate, conflict]);
      expect(result.seqs[4]).toBe(1);
      const expected = {
        received: 15,
        uniqueProcessed: 10,
        duplicateDropped: 3,
        conflicts: 2,
        topicCount: 4,
        topTopics: [
          { name: "payments", count: 4 },
          { name: "orders", count: 3 },
          { name: "audit", count: 2 },
          { name: "billing", count: 1 },
        ],
      };
      expect(await store.stats(10)).toEqual(expected);
      open = undefined;
      await store.close();

      // Opened again, the database is not migrated twice.
      const reopened = await openSqlite(dir);
      open = reopened;
      expect(await reopened.stats(10)).toEqual(expected);
      await reopened.append([newEvent("zebra", "z1")]);
      expect(await reopened.stats(2)).toMatchObject({ uniqueProcessed: 11, topicCount: 5, topTopics: expected.topTopics.slice(0, 2) });
      expect((await reopened.topics("billing", 10)).topics.map((t) => t.name)).toEqual(["orders", "payments", "zebra"]);
    } finally {
      await open?.close();
    }
  });
});
