import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { StoreError } from "../errors.js";
import { AppendStatus, type AppendResult, type CommitListener, type Durability, type EventRecord, type StoredEventRow } from "../types.js";
import type { ConsumerChange, ConsumerOutcome } from "./consumer-writes.js";
import { Outbox } from "./outbox.js";
import type { FromWriter, ToWriter, WriterOptions } from "./writer-protocol.js";

/** A batch handed to the writer and not yet answered. */
interface Waiter {
  /** The batch: its length is its share of the group's outcome arrays; its events become the commit's rows for the listener. */
  records: EventRecord[];
  resolve: (result: AppendResult) => void;
  reject: (err: Error) => void;
}

/** A consumer change handed to the writer and not yet answered. */
interface ChangeWaiter {
  resolve: (outcome: ConsumerOutcome) => void;
  reject: (err: Error) => void;
}

const writerGone = "storage writer stopped: nothing of this request was stored";

/**
 * The main thread's side of the writer worker (writer-worker.ts): starts it,
 * hands it batches through the outbox, and settles each batch's promise from
 * the group commit's answer. If the worker dies, every waiting batch and
 * every later one is refused as `unavailable`: nothing of them was stored.
 */
export class WriterThread {
  private readonly waiters = new Map<number, Waiter>();
  private readonly changeWaiters = new Map<number, ChangeWaiter>();
  private listener: CommitListener | undefined;
  private readonly outbox: Outbox;
  private nextId = 1;
  private gone: Error | undefined;
  private onClosed: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly log: Logger,
  ) {
    this.outbox = new Outbox((message) => worker.postMessage(message));
  }

  /** Starts the worker and resolves once it has opened the database; throws StoreError `unusable` if it cannot. */
  static start(dbPath: string, durability: Durability, log: Logger): Promise<WriterThread> {
    const options: WriterOptions = { dbPath, durability };
    const thread = new WriterThread(new Worker(new URL("./writer-worker.js", import.meta.url), { workerData: options }), log);
    return new Promise((resolve, reject) => {
      thread.worker.on("message", (message: FromWriter) => {
        if (message.type === "ready") resolve(thread);
        else if (message.type === "open-failed") reject(new StoreError("unusable", message.message));
        else thread.receive(message);
      });
      thread.worker.on("error", (err) => {
        log.error({ err }, "writer worker crashed");
        reject(new StoreError("unusable", `writer failed to start: ${err.message}`));
        thread.fail(err);
      });
      thread.worker.on("exit", () => thread.fail(new Error("writer exited")));
    });
  }

  /** Hands a batch to the writer; resolves with its outcomes once the group holding it has committed. */
  append(records: EventRecord[]): Promise<AppendResult> {
    if (this.gone) return Promise.reject(new StoreError("unavailable", writerGone));
    const id = this.nextId++;
    return new Promise<AppendResult>((resolve, reject) => {
      this.waiters.set(id, { records, resolve, reject });
      this.outbox.add(id, records);
    });
  }

  /** Tells `listener` of every commit from now on, before its publishers are answered. */
  onCommit(listener: CommitListener): void {
    this.listener = listener;
  }

  /** Hands one consumer change to the writer; resolves once it has committed. */
  changeConsumer(change: ConsumerChange): Promise<ConsumerOutcome> {
    if (this.gone) return Promise.reject(new StoreError("unavailable", writerGone));
    const id = this.nextId++;
    return new Promise<ConsumerOutcome>((resolve, reject) => {
      this.changeWaiters.set(id, { resolve, reject });
      this.worker.postMessage({ type: "consumer", id, change } satisfies ToWriter);
    });
  }

  /** Commits everything already handed over, then closes the database and ends the worker. */
  async close(): Promise<void> {
    if (this.gone) return;
    await new Promise<void>((resolve) => {
      this.onClosed = resolve;
      this.outbox.flush();
      this.worker.postMessage({ type: "close" } satisfies ToWriter);
    });
  }

  /** Stops the worker at once, for a store that failed to open its other parts. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private receive(message: FromWriter): void {
    switch (message.type) {
      case "appended": {
        const batches = message.ids.map((id) => this.waiters.get(id)!);
        this.tellListener(batches, message);
        let start = 0;
        for (let b = 0; b < batches.length; b++) {
          const waiter = batches[b]!;
          this.waiters.delete(message.ids[b]!);
          const end = start + waiter.records.length;
          waiter.resolve({ statuses: message.statuses.subarray(start, end), seqs: message.seqs.subarray(start, end) });
          start = end;
        }
        return;
      }
      case "consumers-changed":
        for (let i = 0; i < message.ids.length; i++) {
          const waiter = this.changeWaiters.get(message.ids[i]!)!;
          this.changeWaiters.delete(message.ids[i]!);
          waiter.resolve(message.outcomes[i]!);
        }
        return;
      case "failed":
        this.log.warn({ retryable: message.retryable, detail: message.detail, batches: message.ids.length }, "group commit failed; nothing of it was stored");
        for (const id of message.ids) {
          const waiter = this.waiters.get(id) ?? this.changeWaiters.get(id);
          this.waiters.delete(id);
          this.changeWaiters.delete(id);
          waiter?.reject(message.retryable ? new StoreError("unavailable", message.message) : new StoreError("failed", message.detail));
        }
        return;
      case "closed":
        this.onClosed?.();
        return;
    }
  }

  /**
   * The commit's head and, only if the listener asks for them, its stored
   * rows: with nobody following, a commit costs no row objects.
   */
  private tellListener(batches: Waiter[], message: { statuses: Uint8Array; seqs: Float64Array; receivedAt: string }): void {
    if (this.listener === undefined) return;
    let head = 0;
    for (let i = 0; i < message.statuses.length; i++) if (message.statuses[i] === AppendStatus.accepted) head = message.seqs[i]!;
    if (head === 0) return;
    this.listener(head, () => {
      const rows: StoredEventRow[] = [];
      let i = 0;
      for (const batch of batches) {
        for (const record of batch.records) {
          if (message.statuses[i] === AppendStatus.accepted) {
            rows.push({ seq: message.seqs[i]!, topic: record.topic, eventId: record.eventId, ts: record.ts, source: record.source, payload: record.payload, receivedAt: message.receivedAt });
          }
          i++;
        }
      }
      return rows;
    });
  }

  /** The worker is gone: refuse every batch still waiting, and every later one. */
  private fail(reason: Error): void {
    this.gone ??= reason;
    for (const waiter of [...this.waiters.values(), ...this.changeWaiters.values()]) waiter.reject(new StoreError("unavailable", writerGone));
    this.waiters.clear();
    this.changeWaiters.clear();
    this.onClosed?.();
  }
}
