import type Database from "better-sqlite3";
import type { Logger } from "pino";
import { StoreError } from "../errors.js";
import { maxConsumers, type Durability, type EventStore } from "../types.js";
import type { ConsumerChange, ConsumerOutcome } from "./consumer-writes.js";
import { startCheckpointer } from "./checkpointer.js";
import { createStoreReader, type StoreReader } from "./reader.js";
import { openForReading } from "./schema.js";
import { WriterThread } from "./writer-thread.js";

/**
 * The embedded store: one writer worker owns the write connection
 * (writer-thread.ts); queries run on a read-only connection in this thread,
 * reading WAL snapshots, so they never block the writer. With durability
 * normal a third thread checkpoints (checkpoint-worker.ts); with full the
 * WAL is synced at every commit already, and checkpointing on the writer
 * measured no slower.
 */
export async function openSqliteStore(dbPath: string, durability: Durability, log: Logger): Promise<EventStore> {
  const writer = await WriterThread.start(dbPath, durability, log);
  let readDb: Database.Database;
  let reader: StoreReader;
  try {
    readDb = openForReading(dbPath);
    reader = createStoreReader(readDb);
  } catch (err) {
    await writer.terminate();
    throw new StoreError("unusable", `cannot read ${dbPath}: ${(err as Error).message}`);
  }
  const checkpointer = durability === "normal" ? startCheckpointer(dbPath, log) : undefined;
  const change = (c: ConsumerChange): Promise<ConsumerOutcome> => writer.changeConsumer(c);

  return {
    append: (records) => writer.append(records),
    page: async (query) => reader.page(query),
    stats: async (topTopics) => reader.stats(topTopics),
    topics: async (after, limit) => reader.topics(after, limit),
    head: async () => reader.head(),
    onCommit: (listener) => writer.onCommit(listener),
    countAfter: async (filter, afterSeq, cap) => reader.countAfter(filter, afterSeq, cap),
    consumer: async (name) => reader.consumer(name),
    consumers: async (after, limit) => reader.consumers(after, limit),
    async createConsumer(record) {
      const outcome = await change({ kind: "create", record });
      if (outcome.full) throw new StoreError("full", `the database holds ${maxConsumers} consumers, its limit; delete unused ones (DeleteConsumer)`);
      return { record: outcome.record!, created: outcome.created };
    },
    ack: async (name, seq) => (await change({ kind: "ack", name, seq, at: new Date().toISOString() })).record,
    deleteConsumer: async (name) => (await change({ kind: "delete", name })).record,
    async close() {
      await checkpointer?.stop();
      await writer.close();
      readDb.close();
    },
  };
}
