import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { grpcClient } from "../support/clients.js";
import { startServer, tempDir, type TestServer } from "../support/server.js";
import { Ledger } from "./ledger.js";
import { Prng } from "./prng.js";
import { Producer, producerKinds, sendTracked } from "./producer.js";
import { readStoreFile, statsMismatches, type StoreFile } from "./store-file.js";
import { describeFailure, senderFor, warmUpFetch } from "./transports.js";
import { within } from "./within.js";

export interface CrashRunOptions {
  seed: number;
  kills: number;
  durability: "full" | "normal";
}

/** What one run saw; the test asserts on it and prints it. */
export interface RunReport {
  name: string;
  seed: number;
  kills: number;
  requestsAcked: number;
  /** Distinct events acknowledged, by the end of the run. */
  eventsAcked: number;
  /** Distinct events acknowledged while servers were being killed, before the final re-send. */
  eventsAckedUnderLoad: number;
  /** Distinct events sent. */
  eventsDistinct: number;
  /** Events sent, every re-send counted. */
  eventsSent: number;
  rowsStored: number;
  lost: number;
  duplicatesStored: number;
  requestsCut: number;
  requestsRefused: number;
  problems: string[];
  problemCount: number;
  durationMs: number;
  /** The database file, kept for inspection when the run found problems (deleted otherwise). */
  dbPath: string;
}

/** When to kill: after this many more answers, or batches sent, on the current server. */
interface KillTrigger {
  on: "ack" | "send";
  after: number;
  seen: number;
}

/** One server process on the shared database file, from its start to its SIGKILL. */
interface Epoch {
  index: number;
  server: TestServer;
  killed: boolean;
  /** Every request sent to this process: all must settle before the file is checked. */
  inflight: Set<Promise<unknown>>;
  /** None on the last server: it must stay up for the final re-send. */
  trigger: KillTrigger | undefined;
  triggered: Promise<void>;
  fire: () => void;
  exited: Promise<number | null> | undefined;
}

/** With no kill trigger reached in this long, the producers have stopped making progress. */
const progressTimeoutMs = 30_000;

/** A request to a SIGKILLed server fails as soon as its connection drops; this bounds the wait for all of them. */
const settleTimeoutMs = 15_000;

/** Per-kill timings and triggers, for replaying a seed by hand. */
const verbose = process.env.TALLY_CHAOS_VERBOSE === "1";

/**
 * The SIGKILL chaos run: four producers publish concurrently over three
 * transports while the server is SIGKILLed at moments drawn from the seed and
 * restarted on the same file. After each kill, with no server running, the
 * file is checked against everything acknowledged so far. After the last
 * restart every producer re-sends everything it ever sent, and the file must
 * then hold exactly the events ever sent, each once.
 */
export async function runCrashChaos(options: CrashRunOptions): Promise<RunReport> {
  const started = performance.now();
  const dbPath = join(tempDir("tally-chaos-"), "aggregator.db");
  const args = ["--durability", options.durability];
  const killer = Prng.derive(options.seed, `killer-${options.durability}`);
  const ledger = new Ledger();
  let phase: "load" | "resend" = "load";
  let aborted = false;
  const wake: (() => void)[] = [];
  let finalEventsSent = 0;
  let killsDone = 0;
  let completed = false;

  const startEpoch = async (index: number, killable: boolean): Promise<Epoch> => {
    const server = await startServer({ dbPath, args });
    let fire: () => void = () => undefined;
    const triggered = new Promise<void>((resolve) => (fire = resolve));
    const trigger: KillTrigger | undefined = !killable
      ? undefined
      : killer.chance(0.7)
        ? { on: "ack", after: killer.int(1, 30), seen: 0 }
        : { on: "send", after: killer.int(1, 20), seen: 0 };
    return { index, server, killed: false, inflight: new Set(), trigger, triggered, fire, exited: undefined };
  };

  let epoch = await startEpoch(0, true);

  /** Counts an answer or a sent batch against the kill trigger, and kills right here, synchronously, when it is reached. */
  const note = (of: Epoch, what: "ack" | "send") => {
    const trigger = of.trigger;
    if (of !== epoch || of.killed || trigger === undefined || trigger.on !== what) return;
    if (++trigger.seen < trigger.after) return;
    of.killed = true;
    killsDone++;
    of.exited = of.server.stop("SIGKILL");
    of.fire();
  };

  const nextEpoch = async (after: number): Promise<Epoch | undefined> => {
    while (!aborted && epoch.index <= after) await new Promise<void>((resolve) => wake.push(resolve));
    return aborted ? undefined : epoch;
  };

  async function produce(producer: Producer): Promise<void> {
    for (let seen = -1; ; ) {
      const current = await nextEpoch(seen);
      if (current === undefined) return;
      seen = current.index;
      if (phase === "resend") return resendEverything(producer, current);
      const sender = senderFor(producer.kind, current.server.url);
      while (!current.killed) {
        const { batches, fresh } = producer.nextBatches();
        const request = ledger.begin(producer.id, producer.kind, current.index, batches, fresh);
        const call = sendTracked(sender, request, () => note(current, "send"));
        current.inflight.add(call);
        try {
          ledger.acknowledge(request, await call);
          note(current, "ack");
        } catch (err) {
          const failure = describeFailure(err);
          // Once the kill is sent, any failure is the kill's: the request acknowledged nothing.
          ledger.fail(request, current.killed ? "cut" : failure.refused ? "refused" : "failed", `while its server was up: ${failure.text}`);
        }
      }
    }
  }

  /** After the last restart: every event this producer ever sent, again, over its own transport. */
  async function resendEverything(producer: Producer, current: Epoch): Promise<void> {
    const sender = senderFor(producer.kind, current.server.url);
    for (const batches of producer.resendRequests()) {
      for (let attempt = 1; ; attempt++) {
        const request = ledger.begin(producer.id, producer.kind, current.index, batches, new Set());
        try {
          ledger.acknowledge(request, await sendTracked(sender, request, () => undefined), true);
          finalEventsSent += batches.reduce((n, b) => n + b.length, 0);
          break;
        } catch (err) {
          // Only an overloaded queue may refuse; nothing else may fail on a server nobody kills.
          const failure = describeFailure(err);
          const retry = failure.refused && attempt < 5;
          ledger.fail(request, retry ? "refused" : "failed", `during the final re-send: ${failure.text}`);
          if (!retry) break;
        }
      }
    }
  }

  /** The file as the last kill left it, before the final re-send. */
  let lastKill: { file: StoreFile; unstored: number; acked: number } | undefined;
  try {
    await warmUpFetch(epoch.server.url);
    const producers = producerKinds.map((kind, id) => new Producer(id, kind, Prng.derive(options.seed, `producer-${id}`), ledger));
    const running = producers.map((p) =>
      produce(p).catch((err: unknown) => ledger.problem(`producer ${p.id} (${p.kind}) crashed: ${err instanceof Error ? err.stack : String(err)}`)),
    );

    for (let kill = 1; kill <= options.kills; kill++) {
      const current = epoch;
      const t0 = performance.now();
      await within(current.triggered, progressTimeoutMs, () => `no kill trigger (${JSON.stringify(current.trigger)}) reached on server ${current.index}`);
      const t1 = performance.now();
      await within(current.exited!, settleTimeoutMs, () => `server ${current.index} did not exit after SIGKILL`);
      await within(Promise.allSettled(current.inflight), settleTimeoutMs, () => {
        const pending = ledger.requests.filter((r) => r.epoch === current.index && r.state === "pending");
        return `${pending.length} requests still pending ${settleTimeoutMs} ms after SIGKILL: ${pending.map((r) => `${r.id} (${r.kind})`).join(", ")}`;
      });
      const t2 = performance.now();
      const file = readStoreFile(dbPath);
      ledger.checkFile(file, `after kill ${kill} (server ${current.index})`);
      lastKill = { file, unstored: ledger.unstored().length, acked: ledger.ackedEvents };
      const t3 = performance.now();

      if (kill === options.kills) phase = "resend";
      epoch = await startEpoch(kill, phase === "load");
      // The restarted server must report what the file holds before anyone publishes to it.
      const stats = await grpcClient(epoch.server.url).stats({}, { timeoutMs: settleTimeoutMs });
      for (const mismatch of statsMismatches(stats, file)) ledger.problem(`server ${epoch.index} at start: ${mismatch}`);
      if (verbose) {
        const ms = (a: number, b: number) => `${(b - a).toFixed(0)} ms`;
        console.log(
          `kill ${kill} ${JSON.stringify(current.trigger)}: load ${ms(t0, t1)}, settle ${ms(t1, t2)}, check ${ms(t2, t3)} (${file.rows.length} rows), restart ${ms(t3, performance.now())}`,
        );
      }
      for (const resolve of wake.splice(0)) resolve();
    }

    await within(Promise.all(running), 60_000 + ledger.events.size / 5, () => "the final re-send did not finish");
    const stats = await grpcClient(epoch.server.url).stats({}, { timeoutMs: settleTimeoutMs });
    const exitCode = await within(epoch.server.stop("SIGTERM"), settleTimeoutMs, () => "the last server did not exit after SIGTERM");
    if (exitCode !== 0) ledger.problem(`the last server exited with ${exitCode} after SIGTERM`);

    const file = readStoreFile(dbPath);
    ledger.checkFile(file, "after the final re-send", true);
    for (const mismatch of statsMismatches(stats, file)) ledger.problem(`after the final re-send: ${mismatch}`);
    const neverStored = ledger.unstored();
    if (neverStored.length > 0) {
      ledger.problem(`${neverStored.length} events sent and re-sent are not stored, e.g. ${neverStored.slice(0, 5).map((t) => t.event.eventId).join(", ")}`);
    }
    if (file.rows.length !== ledger.events.size) ledger.problem(`the file holds ${file.rows.length} events, ${ledger.events.size} distinct events were sent`);
    const before = lastKill!;
    if (ledger.finalAccepted !== before.unstored) {
      ledger.problem(`the final re-send was answered ACCEPTED ${ledger.finalAccepted} times, but ${before.unstored} events were missing before it`);
    }
    const grew = file.counters.received - before.file.counters.received;
    if (grew !== finalEventsSent) ledger.problem(`received grew by ${grew} during the final re-send of ${finalEventsSent} events`);

    completed = true;
    return {
      name: `SIGKILL x${options.kills}, --durability ${options.durability}`,
      seed: options.seed,
      kills: killsDone,
      requestsAcked: ledger.ackedRequests,
      eventsAcked: ledger.ackedEvents,
      eventsAckedUnderLoad: before.acked,
      eventsDistinct: ledger.events.size,
      eventsSent: ledger.eventsSent,
      rowsStored: file.rows.length,
      lost: ledger.lost.size,
      duplicatesStored: ledger.duplicatesStored,
      requestsCut: ledger.requests.filter((r) => r.state === "cut").length,
      requestsRefused: ledger.requests.filter((r) => r.state === "refused").length,
      problems: ledger.problems,
      problemCount: ledger.problemCount,
      durationMs: performance.now() - started,
      dbPath,
    };
  } catch (err) {
    const problems = ledger.problems.map((p) => `\n  - ${p}`).join("");
    throw new Error(`${err instanceof Error ? err.message : String(err)} (database kept at ${dbPath})${problems}`, { cause: err });
  } finally {
    aborted = true;
    for (const resolve of wake.splice(0)) resolve();
    if (epoch.server.process.exitCode === null && epoch.server.process.signalCode === null) await epoch.server.stop("SIGKILL");
    if (completed && ledger.problemCount === 0) rmSync(dirname(dbPath), { recursive: true, force: true });
  }
}
