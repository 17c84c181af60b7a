import type Database from "better-sqlite3";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { Durability } from "../config.js";
import { StorageUnavailableError } from "../errors.js";
import { startCheckpointer } from "./checkpointer.js";
import { packBatch } from "./packed-batch.js";
import { createStoreReader, type StoreReader } from "./reader.js";
import { openForReading } from "./schema.js";
import type { AppendResult, EventRecord, EventStore } from "./types.js";
import type { FromWriter, ToWriter, WriterOptions } from "./writer-protocol.js";

/** Events that make the outbox worth a message of its own (see handOver). */
const handOverEvents = 100;

/** Thrown by openSqliteStore when the database cannot be opened or used; main() exits with a clear message. */
export class StoreOpenError extends Error {}

interface Waiter {
  /** Events in the batch: its share of the group's outcome arrays. */
  count: number;
  resolve: (result: AppendResult) => void;
  reject: (err: Error) => void;
}

/**
 * The embedded store: one writer worker owns the write connection; queries
 * run on a read-only connection in this thread, reading WAL snapshots. With
 * durability normal a third thread checkpoints (checkpoint-worker.ts); with
 * full the WAL is synced at every commit already, and checkpointing on the
 * writer measured no slower.
 */
export async function openSqliteStore(dbPath: string, durability: Durability, log: Logger): Promise<EventStore> {
  const options: WriterOptions = { dbPath, durability };
  const worker = new Worker(new URL("./writer-worker.js", import.meta.url), { workerData: options });
  const waiters = new Map<number, Waiter>();
  let nextId = 1;
  let closed: (() => void) | undefined;
  let workerGone: Error | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    worker.on("message", (message: FromWriter) => {
      switch (message.type) {
        case "ready":
          resolve();
          break;
        case "open-failed":
          reject(new StoreOpenError(message.message));
          break;
        case "appended": {
          let start = 0;
          for (const id of message.ids) {
            const waiter = waiters.get(id)!;
            waiters.delete(id);
            const end = start + waiter.count;
            waiter.resolve({ statuses: message.statuses.subarray(start, end), seqs: message.seqs.subarray(start, end) });
            start = end;
          }
          break;
        }
        case "failed":
          log.warn({ retryable: message.retryable, detail: message.detail, batches: message.ids.length }, "group commit failed; nothing of it was stored");
          for (const id of message.ids) {
            const waiter = waiters.get(id);
            waiters.delete(id);
            waiter?.reject(message.retryable ? new StorageUnavailableError(message.message) : new Error(message.detail));
          }
          break;
        case "closed":
          closed?.();
          break;
      }
    });
    worker.on("error", (err) => {
      workerGone = err;
      log.error({ err }, "writer worker crashed");
      reject(new StoreOpenError(`writer failed to start: ${err.message}`));
      failAll(new StorageUnavailableError("storage writer stopped: nothing of this request was stored"));
    });
    worker.on("exit", () => {
      workerGone ??= new Error("writer exited");
      failAll(new StorageUnavailableError("storage writer stopped: nothing of this request was stored"));
      closed?.();
    });
  });

  function failAll(err: Error): void {
    for (const waiter of waiters.values()) waiter.reject(err);
    waiters.clear();
  }

  await ready;
  let readDb: Database.Database;
  let reader: StoreReader;
  try {
    readDb = openForReading(dbPath);
    reader = createStoreReader(readDb);
  } catch (err) {
    await worker.terminate();
    throw new StoreOpenError(`cannot read ${dbPath}: ${(err as Error).message}`);
  }
  const checkpointer = durability === "normal" ? startCheckpointer(dbPath, log) : undefined;

  /**
   * Small batches handed over in this event loop turn go together when it
   * ends: every single-event request whose bytes arrived in the turn shares
   * one message (one message each cost single-event REST about 7% of the
   * main thread, profiled). Once the outbox holds handOverEvents it goes at
   * once: a big batch is worth the message, and holding it back would leave
   * the writer idle while this thread decodes the next stream message
   * (measured: 500-event streams lost a sixth of their rate that way).
   */
  let outbox: ToWriter & { type: "append" } = { type: "append", ids: [], packed: [] };
  let outboxEvents = 0;
  let handOverScheduled = false;
  function handOver(): void {
    if (outbox.ids.length === 0) return;
    worker.postMessage(outbox);
    outbox = { type: "append", ids: [], packed: [] };
    outboxEvents = 0;
  }

  return {
    append(records: EventRecord[]): Promise<AppendResult> {
      if (workerGone) return Promise.reject(new StorageUnavailableError("storage writer stopped: nothing of this request was stored"));
      const id = nextId++;
      return new Promise<AppendResult>((resolve, reject) => {
        waiters.set(id, { count: records.length, resolve, reject });
        outbox.ids.push(id);
        outbox.packed.push(packBatch(records));
        outboxEvents += records.length;
        if (outboxEvents >= handOverEvents) handOver();
        else if (!handOverScheduled) {
          handOverScheduled = true;
          setImmediate(() => {
            handOverScheduled = false;
            handOver();
          });
        }
      });
    },
    page: async (query) => reader.page(query),
    stats: async () => reader.stats(),
    async close() {
      await checkpointer?.stop();
      if (!workerGone) {
        await new Promise<void>((resolve) => {
          closed = resolve;
          handOver();
          worker.postMessage({ type: "close" } satisfies ToWriter);
        });
      }
      readDb.close();
    },
  };
}
