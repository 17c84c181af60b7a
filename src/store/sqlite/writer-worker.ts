import Database from "better-sqlite3";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { createGroupAppender, type GroupAppender } from "./append.js";
import { createConsumerWriter, type ConsumerChange, type ConsumerOutcome } from "./consumer-writes.js";
import { unpackBatch } from "./packed-batch.js";
import { openForWriting } from "./schema.js";
import type { FromWriter, ToWriter, WriterOptions } from "./writer-protocol.js";

/**
 * The only writer. It runs in a worker thread because better-sqlite3 is
 * synchronous: a commit on the main thread would stall every socket.
 *
 * Group commit: batches that arrive while a transaction runs wait in the
 * port's queue; the next flush drains the queue and takes all of them into one
 * transaction, so one fsync covers every request that arrived meanwhile.
 */

const port = parentPort!;
const options = workerData as WriterOptions;

/** SQLite result codes after which a retry may succeed: the caller gets `unavailable`. */
const retryableCodes = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|PROTOCOL|NOMEM|READONLY)/;

function send(message: FromWriter, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

let db: Database.Database;
let appendGroup: GroupAppender;
let changeConsumers: (changes: ConsumerChange[]) => ConsumerOutcome[];
try {
  db = openForWriting(options.dbPath, options.durability);
  appendGroup = createGroupAppender(db);
  changeConsumers = createConsumerWriter(db);
  send({ type: "ready" });
} catch (err) {
  send({ type: "open-failed", message: describeOpenFailure(err) });
  process.exit(0);
}

let pendingIds: number[] = [];
let pendingBatches: string[] = [];
let pendingChangeIds: number[] = [];
let pendingChanges: ConsumerChange[] = [];
let flushScheduled = false;
let closeRequested = false;
let closed = false;

function accept(message: ToWriter): void {
  if (message.type === "append") {
    for (let i = 0; i < message.ids.length; i++) {
      pendingIds.push(message.ids[i]!);
      pendingBatches.push(message.packed[i]!);
    }
  } else if (message.type === "consumer") {
    pendingChangeIds.push(message.id);
    pendingChanges.push(message.change);
  } else if (message.type === "close") closeRequested = true;
}

/**
 * Takes every message already queued on the port. Without this a flush saw
 * only the message that scheduled it (Node delivers port messages one event
 * loop turn at a time), so single-event requests each paid a whole commit.
 */
function drainPort(): void {
  for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) {
    accept(next.message as ToWriter);
  }
}

function flush(): void {
  flushScheduled = false;
  if (closed) return;
  drainPort();
  if (pendingIds.length > 0) commit();
  if (pendingChangeIds.length > 0) commitConsumerChanges();
  if (closeRequested) {
    closed = true;
    db.close();
    send({ type: "closed" });
    port.close();
  }
}

function commit(): void {
  const ids = pendingIds;
  const batches = pendingBatches;
  pendingIds = [];
  pendingBatches = [];
  try {
    const { statuses, seqs, receivedAt } = appendGroup(batches.map(unpackBatch));
    send({ type: "appended", ids, statuses, seqs, receivedAt }, [statuses.buffer as ArrayBuffer, seqs.buffer as ArrayBuffer]);
  } catch (err) {
    sendFailure(ids, err);
  }
}

/** Consumer changes commit after the turn's events, in a transaction of their own: an ack never waits for a large group. */
function commitConsumerChanges(): void {
  const ids = pendingChangeIds;
  const changes = pendingChanges;
  pendingChangeIds = [];
  pendingChanges = [];
  try {
    send({ type: "consumers-changed", ids, outcomes: changeConsumers(changes) });
  } catch (err) {
    sendFailure(ids, err);
  }
}

function sendFailure(ids: number[], err: unknown): void {
  const code = (err as { code?: unknown }).code;
  const retryable = typeof code === "string" && retryableCodes.test(code);
  send({
    type: "failed",
    ids,
    retryable,
    message: retryable ? storageMessage(code as string) : "storage error",
    detail: err instanceof Error ? err.message : String(err),
  });
}

function storageMessage(code: string): string {
  if (code.startsWith("SQLITE_FULL")) return "storage is full: nothing of this request was stored, retry when space is available";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "storage is busy (locked by another process): nothing of this request was stored, retry";
  return "storage is unavailable: nothing of this request was stored, retry";
}

function describeOpenFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") return `${options.dbPath} is not a usable SQLite database (${message})`;
  if (code === "SQLITE_CANTOPEN" || code === "EACCES" || code === "EROFS") return `cannot open ${options.dbPath}: ${message}`;
  return `cannot use database ${options.dbPath}: ${message}`;
}

port.on("message", (message: ToWriter) => {
  accept(message);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
});
