import { ChildWorker } from "./child-worker.js";
import type { LoadResult } from "../load/run-record.js";
import type { FromLoader, LoaderJob, RawResult, ToLoader } from "./loader-protocol.js";

/**
 * Heap for the load generator. Pre-encoded requests of a million-event
 * scenario and the shared encodings of every event take several hundred MB;
 * Node's default limit would make it collect garbage in the middle of a run.
 */
const loaderHeapMiB = 8192;

/** The orchestrator's handle on its load-generator process. */
export class LoaderProcess {
  private readonly worker = new ChildWorker<ToLoader, FromLoader>(new URL("./loader.js", import.meta.url), "load generator", {
    execArgv: [`--max-old-space-size=${loaderHeapMiB}`],
  });

  get pid(): number {
    return this.worker.pid;
  }

  /** Encodes everything the job will send; resolves when the job can start. */
  async prepare(job: LoaderJob): Promise<void> {
    await this.exchange({ type: "prepare", job }, (m) => (m.type === "prepared" ? true : undefined));
  }

  /** Runs the prepared load or JetStream job; `onProgress` hears how many events are written so far. */
  runLoad(onProgress: (done: number) => void): Promise<LoadResult> {
    return this.exchange({ type: "start" }, (m) => {
      if (m.type === "progress") onProgress(m.done);
      return m.type === "load-done" ? m.result : undefined;
    });
  }

  /** Runs the prepared raw job: one result per workload. */
  runRaw(): Promise<RawResult[]> {
    return this.exchange({ type: "start" }, (m) => (m.type === "raw-done" ? m.results : undefined));
  }

  close(): void {
    this.worker.send({ type: "exit" });
  }

  private exchange<T>(message: ToLoader, accept: (m: FromLoader) => T | undefined): Promise<T> {
    return this.worker.exchange(message, accept);
  }
}
