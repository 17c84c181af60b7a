import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
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
  private readonly child: ChildProcess;
  private listener: ((message: FromLoader) => void) | undefined;
  private exited: Error | undefined;

  constructor() {
    const entry = fileURLToPath(new URL("./loader.js", import.meta.url));
    this.child = fork(entry, [], { execArgv: [`--max-old-space-size=${loaderHeapMiB}`], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (message: FromLoader) => this.listener?.(message));
    this.child.on("exit", (code, signal) => {
      this.exited = new Error(`load generator exited (${signal ?? code})`);
      this.listener?.({ type: "error", message: this.exited.message });
    });
  }

  get pid(): number {
    return this.child.pid!;
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
    if (this.exited === undefined && this.child.connected) this.child.send({ type: "exit" } satisfies ToLoader);
  }

  private exchange<T>(message: ToLoader, accept: (m: FromLoader) => T | undefined): Promise<T> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      this.listener = (m) => {
        if (m.type === "error") {
          this.listener = undefined;
          reject(new Error(`load generator: ${m.message}`));
          return;
        }
        const value = accept(m);
        if (value !== undefined) {
          this.listener = undefined;
          resolve(value);
        }
      };
      this.child.send(message);
    });
  }
}
