import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startServer } from "../support/server.js";
import type { RunReport } from "./crash-run.js";
import { Ledger } from "./ledger.js";
import { Prng } from "./prng.js";
import { Producer, producerKinds, sendTracked } from "./producer.js";
import { readStoreFile } from "./store-file.js";
import { describeFailure, senderFor, warmUpFetch } from "./transports.js";
import { within } from "./within.js";

/** What the SIGTERM run saw, beyond what every run reports. */
export interface GracefulReport extends RunReport {
  exitCode: number | null;
  /** Requests sent and not yet answered when SIGTERM was sent. */
  inFlightAtSigterm: number;
}

/** Bound on how long requests and the process may take to finish once SIGTERM is sent; the server's own deadline is 9 s. */
const drainTimeoutMs = 20_000;

/** What a connection reset under a REST request during shutdown most likely means, for whoever reads the failure. */
const keepAliveHint =
  " (most likely the draining server closed an idle HTTP/1.1 keep-alive connection just as this request was written to it: no answer, so the client cannot tell whether it was processed)";

/**
 * The SIGTERM chaos run: the same four producers, SIGTERM after a number of
 * answers drawn from the seed, and every producer sending on until the server
 * refuses it. Every request must settle, as an answer or a clean refusal;
 * the process must exit 0 with every answered event in the file.
 */
export async function runGracefulChaos(options: { seed: number }): Promise<GracefulReport> {
  const started = performance.now();
  const server = await startServer();
  const ledger = new Ledger();
  const prng = Prng.derive(options.seed, "sigterm");
  const sigtermAfter = prng.int(10, 80);
  let acks = 0;
  let completed = false;
  let inFlightAtSigterm = 0;
  let stopping: Promise<number | null> | undefined;
  let fire: () => void = () => undefined;
  const sigterm = new Promise<void>((resolve) => (fire = resolve));

  async function produce(producer: Producer): Promise<void> {
    const sender = senderFor(producer.kind, server.url);
    for (;;) {
      const { batches, fresh } = producer.nextBatches();
      const request = ledger.begin(producer.id, producer.kind, 0, batches, fresh);
      try {
        ledger.acknowledge(request, await sendTracked(sender, request, () => undefined));
        if (++acks >= sigtermAfter && stopping === undefined) {
          inFlightAtSigterm = ledger.requests.filter((r) => r.state === "pending").length;
          stopping = server.stop("SIGTERM");
          fire();
        }
      } catch (err) {
        const failure = describeFailure(err);
        const when = stopping === undefined ? "before SIGTERM" : "after SIGTERM";
        const hint = stopping !== undefined && producer.kind === "rest-unary" && /UND_ERR_SOCKET|ECONNRESET/.test(failure.text) ? keepAliveHint : "";
        ledger.fail(request, failure.refused ? "refused" : "failed", `${when}: ${failure.text}${hint}`);
        // Before SIGTERM a refusal is overload: go on. After it, the producer is done.
        if (stopping !== undefined || !failure.refused) return;
      }
    }
  }

  try {
    await warmUpFetch(server.url);
    const producers = producerKinds.map((kind, id) => new Producer(id, kind, Prng.derive(options.seed, `graceful-producer-${id}`), ledger));
    const running = producers.map((p) =>
      produce(p).catch((err: unknown) => ledger.problem(`producer ${p.id} (${p.kind}) crashed: ${err instanceof Error ? err.stack : String(err)}`)),
    );
    await within(sigterm, 30_000, () => `only ${acks} of ${sigtermAfter} answers before SIGTERM`);
    await within(Promise.all(running), drainTimeoutMs, () => {
      const pending = ledger.requests.filter((r) => r.state === "pending");
      return `left hanging after SIGTERM: ${pending.map((r) => `request ${r.id} (${r.kind}, producer ${r.producer})`).join(", ")}`;
    });
    const exitCode = await within(stopping!, drainTimeoutMs, () => "the server did not exit after SIGTERM");
    if (exitCode !== 0) ledger.problem(`the server exited with ${exitCode} after SIGTERM`);
    const file = readStoreFile(server.dbPath);
    ledger.checkFile(file, "after SIGTERM", true);
    completed = true;
    return {
      name: "SIGTERM mid-load",
      seed: options.seed,
      kills: 0,
      requestsAcked: ledger.ackedRequests,
      eventsAcked: ledger.ackedEvents,
      eventsAckedUnderLoad: ledger.ackedEvents,
      eventsDistinct: ledger.events.size,
      eventsSent: ledger.eventsSent,
      rowsStored: file.rows.length,
      lost: ledger.lost.size,
      duplicatesStored: ledger.duplicatesStored,
      requestsCut: 0,
      requestsRefused: ledger.requests.filter((r) => r.state === "refused").length,
      problems: ledger.problems,
      problemCount: ledger.problemCount,
      durationMs: performance.now() - started,
      dbPath: server.dbPath,
      exitCode,
      inFlightAtSigterm,
    };
  } catch (err) {
    const problems = ledger.problems.map((p) => `\n  - ${p}`).join("");
    throw new Error(`${err instanceof Error ? err.message : String(err)} (database kept at ${server.dbPath})${problems}`, { cause: err });
  } finally {
    if (server.process.exitCode === null && server.process.signalCode === null) await server.stop("SIGKILL");
    if (completed && ledger.problemCount === 0) rmSync(dirname(server.dbPath), { recursive: true, force: true });
  }
}
