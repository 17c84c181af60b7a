import { Worker } from "node:worker_threads";
import type { Logger } from "pino";

/** What the checkpoint thread is given; see checkpoint-worker.ts for why it exists. */
export interface CheckpointerOptions {
  dbPath: string;
  intervalMs: number;
}

/** The thread speaks only to report a failed checkpoint, once until one succeeds again. */
export type FromCheckpointer = { type: "failed"; message: string };

/**
 * How often the thread checkpoints. At 1,400 single-event commits a second
 * this syncs about a quarter second of WAL at a time; on an idle database a
 * tick finds nothing to copy.
 */
const checkpointIntervalMs = 250;

export interface Checkpointer {
  /** Stops the thread once its current checkpoint is done, and closes its connection. */
  stop(): Promise<void>;
}

/** Starts the checkpoint thread on an open database. Its failures are logged, never fatal: the writer checkpoints too. */
export function startCheckpointer(dbPath: string, log: Logger): Checkpointer {
  const options: CheckpointerOptions = { dbPath, intervalMs: checkpointIntervalMs };
  const worker = new Worker(new URL("./checkpoint-worker.js", import.meta.url), { workerData: options });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.on("message", (message: FromCheckpointer) => {
    log.warn({ detail: message.message }, "checkpoint failed; the WAL is kept and checkpointed later");
  });
  worker.on("error", (err) => log.warn({ err }, "checkpoint thread stopped; the writer checkpoints on its own"));
  return {
    async stop() {
      worker.postMessage("close");
      await exited;
    },
  };
}
