import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import type { CheckpointerOptions, FromCheckpointer } from "./checkpointer.js";

/**
 * Copies the WAL into the database file on a connection of its own, so the
 * writer never waits for it. With durability normal a checkpoint must first
 * sync every WAL frame written since the last one; on the writer thread that
 * stalled every commit for tens of milliseconds each time and doubled the
 * unary p99 (README, Performance). PASSIVE never waits for the writer or for
 * readers: it copies what it can, and the writer's own automatic checkpoint
 * stays the bound should this thread fall behind.
 */

const port = parentPort!;
const options = workerData as CheckpointerOptions;

function send(message: FromCheckpointer): void {
  port.postMessage(message);
}

const db = new Database(options.dbPath, { fileMustExist: true });
db.pragma("synchronous = NORMAL");

let reportedFailure = false;
function checkpoint(): void {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
    reportedFailure = false;
  } catch (err) {
    // A busy or failed checkpoint loses nothing: the frames stay in the WAL for the next one.
    if (!reportedFailure) send({ type: "failed", message: err instanceof Error ? err.message : String(err) });
    reportedFailure = true;
  }
}

const timer = setInterval(checkpoint, options.intervalMs);

port.on("message", () => {
  clearInterval(timer);
  db.close();
  port.close();
});
