import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FromSubscribers, SubscribeJob, ToSubscribers } from "./subscribers-protocol.js";

/** What a subscriber process answered once its subscribers held everything, or the time ran out. */
export type SubscribersFinished = Extract<FromSubscribers, { type: "finished" }>;

/**
 * The orchestrator's handle on one subscriber process (subscribers.ts),
 * forked for one measurement and ended after it, so no subscriber of a
 * run outlives it.
 */
export class SubscriberProcess {
  private readonly child: ChildProcess;
  private listener: ((message: FromSubscribers) => void) | undefined;
  private exited: Error | undefined;
  /** Events received so far, all subscribers together (progress messages). */
  received = 0;

  constructor() {
    const entry = fileURLToPath(new URL("./subscribers.js", import.meta.url));
    this.child = fork(entry, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (message: FromSubscribers) => {
      if (message.type === "progress") this.received = message.received;
      else this.listener?.(message);
    });
    this.child.on("exit", (code, signal) => {
      this.exited = new Error(`subscriber process exited (${signal ?? code})`);
      this.listener?.({ type: "error", message: this.exited.message });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Subscribes; resolves once live subscriptions are in place (a catch-up's once requested). */
  async start(job: SubscribeJob, target?: number): Promise<void> {
    await this.exchange({ type: "start", job, ...(target !== undefined && { target }) }, (m) => (m.type === "ready" ? true : undefined));
  }

  /** Each subscriber's count of events received now; resetLatency drops the latencies recorded so far. */
  mark(resetLatency: boolean): Promise<number[]> {
    return this.exchange({ type: "mark", resetLatency }, (m) => (m.type === "marked" ? m.received : undefined));
  }

  /** Waits until every subscriber holds everything up to `target` (or they stall: see ToSubscribers); closes them and reports. */
  finish(target: number, limits: { stallMs: number; capMs: number }): Promise<SubscribersFinished> {
    return this.exchange({ type: "finish", target, ...limits }, (m) => (m.type === "finished" ? m : undefined));
  }

  close(): void {
    if (this.exited === undefined && this.child.connected) this.child.send({ type: "exit" } satisfies ToSubscribers);
  }

  private exchange<T>(message: ToSubscribers, accept: (m: FromSubscribers) => T | undefined): Promise<T> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      this.listener = (m) => {
        if (m.type === "error") {
          this.listener = undefined;
          reject(new Error(`subscriber process: ${m.message}`));
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
