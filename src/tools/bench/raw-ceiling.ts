import Database from "better-sqlite3";
import { createGroupAppender, type FlatBatch } from "../../store/sqlite/append.js";
import { openForWriting } from "../../store/sqlite/schema.js";
import type { EventRecord } from "../../store/types.js";
import { decodeMessageEvents } from "../../codec/message-events.js";
import { validateBatch } from "../../codec/validate.js";
import { eventFields, protoEvent, topicNames } from "../load/events.js";
import { LatencyRecorder } from "../load/latency.js";
import { buildWorkload, DistinctCounter, type Workload, type WorkloadSpec } from "../load/workload.js";
import type { RawJob, RawResult } from "./loader-protocol.js";

/**
 * The ceiling: the same events inserted straight into the same schema with
 * the server's own group appender, in one process, no network and no queue.
 * Whatever the server does on top costs against this figure.
 *
 * Everything is made ready first (store form via validateBatch, one flat
 * batch per transaction), so the clock covers the transactions only.
 */

/** validateBatch refuses larger batches; store forms are made in slices of this size. */
const storeFormSlice = 1000;

/**
 * Store forms kept across raw jobs of the same events (every batch size and
 * pragma set inserts the same million events): validation is not what is
 * measured, and redoing it for each job cost more than the job.
 */
const storeForms = new Map<string, EventRecord[]>();

/** Store forms of events indexBase .. indexBase + count - 1, made once when `shared`. */
function storeFormsOf(seed: number, topicCount: number, indexBase: number, count: number, shared: boolean): EventRecord[] {
  const key = `${seed}/${topicCount}/${indexBase}`;
  const records = (shared ? storeForms.get(key) : undefined) ?? [];
  if (shared) storeForms.set(key, records);
  const topics = topicNames(topicCount);
  for (let from = records.length; from < count; from += storeFormSlice) {
    const to = Math.min(from + storeFormSlice, count);
    const events = [];
    for (let k = from; k < to; k++) events.push(protoEvent(eventFields(seed, indexBase + k, topics)));
    const { records: slice } = validateBatch(decodeMessageEvents(events), { maxBatch: storeFormSlice, maxPayloadBytes: 65_536 });
    records.push(...slice);
  }
  return records;
}

/** One flat batch per transaction, in the workload's send order. */
function batchesOf(job: RawJob, spec: WorkloadSpec): { workload: Workload; batches: FlatBatch[] } {
  const workload = buildWorkload(spec);
  const base = spec.indexBase;
  const records = storeFormsOf(spec.seed, job.topics, base, workload.unique, job.cache === "shared");
  const batches: FlatBatch[] = [];
  for (let start = 0; start < workload.order.length; start += job.batch) {
    const end = Math.min(start + job.batch, workload.order.length);
    const fields: FlatBatch = new Array((end - start) * 5);
    for (let s = start, f = 0; s < end; s++, f += 5) {
      const r = records[workload.order[s]! - base]!;
      fields[f] = r.topic;
      fields[f + 1] = r.eventId;
      fields[f + 2] = r.ts;
      fields[f + 3] = r.source;
      fields[f + 4] = r.payload;
    }
    batches.push(fields);
  }
  return { workload, batches };
}

/**
 * Prepares a raw run; the returned function runs it, timed. Workloads run in
 * order on one connection, each timed on its own (growth's steps); the
 * batches of the first are made now, those of the others between the timed
 * parts.
 */
export function prepareRaw(job: RawJob): () => RawResult[] {
  const first = batchesOf(job, job.workloads[0]!);
  const db = openRaw(job);
  const append = createGroupAppender(db);
  const pragmas = readPragmas(db);

  return () => {
    try {
      return job.workloads.map((spec, k) => timeBatches(k === 0 ? first : batchesOf(job, spec)));
    } finally {
      db.close();
    }
  };

  function timeBatches({ workload, batches }: { workload: Workload; batches: FlatBatch[] }): RawResult {
    const latency = new LatencyRecorder();
    const counter = new DistinctCounter(workload);
    const budgetMs = job.budgetSeconds * 1000;
    let timeBoxed = false;
    let transactions = 0;
    const started = performance.now();
    for (let i = 0; i < batches.length; i++) {
      const before = performance.now();
      append([batches[i]!]);
      const after = performance.now();
      latency.record((after - before) * 1000);
      counter.mark(i * job.batch, Math.min((i + 1) * job.batch, workload.order.length));
      transactions++;
      if (after - started > budgetMs && i < batches.length - 1) {
        timeBoxed = true;
        break;
      }
    }
    const elapsedSeconds = (performance.now() - started) / 1000;
    return { sends: counter.sends, distinct: counter.distinct, transactions, elapsedSeconds, latency: latency.summary(), timeBoxed, pragmas };
  }
}

/**
 * tuned: exactly the server's writer connection (openForWriting). defaults:
 * the schema is created by openForWriting, then the file is reopened as a
 * plain better-sqlite3 connection with only WAL switched on, so cache size,
 * synchronous (better-sqlite3 builds SQLite with WAL synchronous=NORMAL) and
 * the rest are the library's defaults.
 */
function openRaw(job: RawJob): Database.Database {
  const db = openForWriting(job.dbPath, job.durability);
  if (job.pragmas === "tuned") return db;
  db.close();
  const plain = new Database(job.dbPath);
  plain.pragma("journal_mode = WAL");
  return plain;
}

function readPragmas(db: Database.Database): Record<string, string | number> {
  const names = ["journal_mode", "synchronous", "cache_size", "wal_autocheckpoint", "temp_store", "page_size"];
  return Object.fromEntries(names.map((name) => [name, db.pragma(name, { simple: true }) as string | number]));
}
