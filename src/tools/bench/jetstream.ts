import { readdirSync, readFileSync } from "node:fs";
import { jetstreamManager, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";

/**
 * The NATS JetStream server the subscriber scenarios compare tally with:
 * whether one answers, and the streams the bench makes on it, one per
 * measurement, deleted after it.
 */

/** Where the NATS server is: the bench's machine and CI run one here. */
export const natsUrl = process.env.TALLY_BENCH_NATS_URL ?? "127.0.0.1:4222";

/** The line the bench prints when it leaves JetStream out. */
export const natsSkippedLine = `NATS JetStream: skipped (no server on ${natsUrl})`;

/** Whether a NATS server with JetStream answers at natsUrl (within 2 s). */
export async function jetStreamAvailable(): Promise<boolean> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: natsUrl, timeout: 2_000, reconnect: false });
    await (await jetstreamManager(nc)).getAccountInfo();
    return true;
  } catch {
    return false;
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

/**
 * Re-sends of the bench's workload come up to a whole run after their
 * original; dedup by Nats-Msg-Id must remember ids at least that long,
 * as tally's unique index does for ever. JetStream's default is 2 minutes.
 */
const duplicateWindowMs = 15 * 60_000;

let made = 0;

/** A JetStream stream of the bench: file storage (on disk, as tally's events are), every subject under its own prefix. */
export class BenchStream {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    readonly name: string,
    /** Messages go to `${subjectPrefix}.${topic}`. */
    readonly subjectPrefix: string,
  ) {}

  static async create(): Promise<BenchStream> {
    const nc = await connect({ servers: natsUrl, name: "tally-bench-admin" });
    const jsm = await jetstreamManager(nc);
    // pid and time in the name: two benches on one NATS server never share a stream.
    const name = `tally-bench-${process.pid}-${Date.now().toString(36)}-${made++}`;
    const subjectPrefix = `tallybench.${name}`;
    await jsm.streams.add({ name, subjects: [`${subjectPrefix}.>`], storage: StorageType.File, duplicate_window: nanos(duplicateWindowMs) });
    return new BenchStream(nc, jsm, name, subjectPrefix);
  }

  /** Messages stored, and the stream's last seq. */
  async state(): Promise<{ messages: number; firstSeq: number; lastSeq: number }> {
    const info = await this.jsm.streams.info(this.name);
    return { messages: info.state.messages, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  }

  /** Deletes the stream and its messages, and closes the admin connection. */
  async remove(): Promise<void> {
    try {
      await this.jsm.streams.delete(this.name);
    } finally {
      await this.nc.close();
    }
  }
}

/**
 * The local nats-server's pid, for its CPU and memory beside tally's, or
 * undefined when none runs on this machine (a NATS server elsewhere).
 */
export function natsServerPid(): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "nats-server") return Number(entry);
    } catch {
      // Gone while we looked.
    }
  }
  return undefined;
}
