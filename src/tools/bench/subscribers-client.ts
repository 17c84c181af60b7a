import { ChildWorker } from "./child-worker.js";
import type { FromSubscribers, SubscribeJob, ToSubscribers } from "./subscribers-protocol.js";

/** What a subscriber process answered once its subscribers held everything, or the time ran out. */
export type SubscribersFinished = Extract<FromSubscribers, { type: "finished" }>;

/**
 * The orchestrator's handle on one subscriber process (subscribers.ts),
 * forked for one measurement and ended after it, so no subscriber of a
 * run outlives it.
 */
export class SubscriberProcess {
  private readonly worker: ChildWorker<ToSubscribers, FromSubscribers>;
  /** Events received so far, all subscribers together (progress messages). */
  received = 0;

  constructor() {
    this.worker = new ChildWorker(new URL("./subscribers.js", import.meta.url), "subscriber process", {
      onOther: (message) => {
        if (message.type !== "progress") return false;
        this.received = message.received;
        return true;
      },
    });
  }

  get pid(): number {
    return this.worker.pid;
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
    this.worker.send({ type: "exit" });
  }

  private exchange<T>(message: ToSubscribers, accept: (m: FromSubscribers) => T | undefined): Promise<T> {
    return this.worker.exchange(message, accept);
  }
}
