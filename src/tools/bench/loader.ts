/**
 * The bench's load generator, a process of its own (forked by
 * loader-client.ts). It prepares a job in full when asked (workload, every
 * request body encoded), then runs it when told to start, so the orchestrator
 * can start its clock and CPU sampling exactly when the sending starts.
 */
import { makeBatches, preEncode, type Batches } from "../load/batches.js";
import { EventCache } from "../load/event-cache.js";
import { runLoad } from "../load/run-load.js";
import { RunRecord, type LoadResult } from "../load/run-record.js";
import { buildWorkload, type Workload } from "../load/workload.js";
import { prepareJetStream } from "./jetstream-publish.js";
import type { FromLoader, JetStreamJob, LoadJob, ToLoader } from "./loader-protocol.js";
import { prepareRaw } from "./raw-ceiling.js";

/** How often progress is reported: often enough for a smooth bar, rarely enough to cost nothing. */
const progressMs = 250;

/** Encodings kept across jobs, by seed and topic count: every scenario of a bench sends the same events. */
const sharedCaches = new Map<string, EventCache>();

let prepared: (() => Promise<void>) | undefined;

function send(message: FromLoader): void {
  process.send!(message);
}

/** The job's event cache: the shared one of its seed and topics, or one of its own. */
function cacheFor(job: LoadJob | JetStreamJob): EventCache {
  const key = `${job.workload.seed}/${String(job.topics)}/${job.workload.indexBase}`;
  let cache = job.cache === "shared" ? sharedCaches.get(key) : undefined;
  if (cache === undefined) {
    cache = new EventCache(job.workload.seed, job.topics, job.workload.indexBase);
    if (job.cache === "shared") sharedCaches.set(key, cache);
  }
  return cache;
}

/** Runs `run` with progress reports every progressMs, and sends its result. */
async function reporting(workload: Workload, run: (record: RunRecord) => Promise<LoadResult>): Promise<void> {
  const record = new RunRecord(workload);
  const timer = setInterval(() => send({ type: "progress", done: record.written }), progressMs);
  try {
    send({ type: "load-done", result: await run(record) });
  } finally {
    clearInterval(timer);
  }
}

function prepareLoad(job: LoadJob): () => Promise<void> {
  const cache = cacheFor(job);
  const workload = buildWorkload(job.workload);
  const batches: Batches = preEncode(makeBatches(job.spec.transport, workload, job.batch, cache));
  return () => reporting(workload, (record) => runLoad(job.spec, batches, record));
}

process.on("message", (message: ToLoader) => {
  void (async () => {
    try {
      if (message.type === "prepare") {
        const job = message.job;
        if (job.kind === "load") {
          prepared = prepareLoad(job);
        } else if (job.kind === "jetstream") {
          const workload = buildWorkload(job.workload);
          const run = prepareJetStream(job, workload, cacheFor(job));
          prepared = () => reporting(workload, run);
        } else {
          const run = prepareRaw(job);
          prepared = async () => send({ type: "raw-done", results: run() });
        }
        send({ type: "prepared" });
      } else if (message.type === "start") {
        const run = prepared;
        prepared = undefined;
        if (run === undefined) throw new Error("start before prepare");
        await run();
      } else {
        process.exit(0);
      }
    } catch (err) {
      send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  })();
});

// The orchestrator gone means nobody reads our results: stop.
process.on("disconnect", () => process.exit(0));
