import { PublishResult_Status as Status, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { fileInvariantViolations, type StoreFile } from "./store-file.js";
import type { Ack, ProducerKind } from "./transports.js";
import { canonicalPayload, eventKey, storedTimestamp } from "./workload.js";

/** One event the producers sent at least once, and everything learned about it. */
export interface Tracked {
  key: string;
  event: Event;
  /** Acknowledged by some answer: it must be stored from then on, forever. */
  acked: boolean;
  /** seq an answer reported for it; every later answer and the file must agree. */
  ackedSeq: number | undefined;
  /** seq the file held it under at a check; it may never change afterwards. */
  storedSeq: number | undefined;
}

/**
 * How a request ended. `cut`: its server was SIGKILLed before it answered, so it
 * acknowledges nothing. `refused`: the server said it did not take it. `failed`:
 * any other failure while the server was up, which the test counts as a problem.
 */
export type RequestState = "pending" | "acked" | "refused" | "cut" | "failed";

/** One Publish call or one PublishStream, with the batches it carried. */
export interface RequestRecord {
  id: number;
  producer: number;
  kind: ProducerKind;
  /** Which server process (0 for the first, +1 per restart) it was sent to. */
  epoch: number;
  batches: Tracked[][];
  /** Events this request sent for the first time: nobody else sends them before the request settles. */
  fresh: Set<Tracked>;
  /** Highest seq any answer had reported when this request was sent: seqs it creates must be above it. */
  floorSeq: number;
  state: RequestState;
  failure?: string;
  /** Its stored events' order and atomicity have been checked against the file. */
  orderChecked: boolean;
}

/**
 * Problems of one kind found many times in one check (a crash that loses a
 * batch loses all its events), reported once each with a count and examples.
 */
class Findings {
  private readonly examples = new Map<string, string[]>();
  private readonly counts = new Map<string, number>();

  add(kind: string, example: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const examples = this.examples.get(kind) ?? [];
    if (examples.length < 5) examples.push(example);
    this.examples.set(kind, examples);
  }

  report(label: string, problem: (text: string) => void): void {
    for (const [kind, count] of this.counts) problem(`${label}: ${kind}: ${count} times, e.g. ${this.examples.get(kind)!.join("; ")}`);
  }
}

/** At most this many problems are kept verbatim; the rest are counted. */
const maxKeptProblems = 50;

/**
 * The test's record of what was sent and acknowledged, and the checks of
 * every answer and every file snapshot against it. Problems are collected,
 * not thrown, so one run reports all it saw; the test asserts none.
 */
export class Ledger {
  readonly events = new Map<string, Tracked>();
  readonly requests: RequestRecord[] = [];
  /** Events whose first request has settled: candidates for re-sends. */
  readonly pool: Tracked[] = [];
  readonly problems: string[] = [];
  problemCount = 0;
  /** Distinct acknowledged events found missing from the file. */
  readonly lost = new Set<string>();
  /** Events the file held twice, at worst, across checks. */
  duplicatesStored = 0;
  ackedRequests = 0;
  ackedEvents = 0;
  /** Events sent in requests, counting every re-send. */
  eventsSent = 0;
  /** ACCEPTED answers counted during the final re-send, per-event and stream totals together. */
  finalAccepted = 0;
  private maxAnsweredSeq = 0;
  /** Highest seq in the file at the last check: rows committed later must be above it. */
  private checkedMaxSeq = 0;
  private nextRequestId = 1;

  problem(text: string): void {
    this.problemCount++;
    if (this.problems.length < maxKeptProblems) this.problems.push(text);
  }

  /** Registers an event created for its first send. */
  track(event: Event): Tracked {
    const key = eventKey(event.topic, event.eventId);
    if (this.events.has(key)) throw new Error(`event ${event.eventId} created twice`);
    const tracked: Tracked = { key, event, acked: false, ackedSeq: undefined, storedSeq: undefined };
    this.events.set(key, tracked);
    return tracked;
  }

  begin(producer: number, kind: ProducerKind, epoch: number, batches: Tracked[][], fresh: Set<Tracked>): RequestRecord {
    const request: RequestRecord = {
      id: this.nextRequestId++,
      producer,
      kind,
      epoch,
      batches,
      fresh,
      floorSeq: this.maxAnsweredSeq,
      state: "pending",
      orderChecked: false,
    };
    this.requests.push(request);
    for (const batch of batches) this.eventsSent += batch.length;
    return request;
  }

  /** Records an answer and checks it: no CONFLICT, seqs that agree with every earlier answer, commit order. */
  acknowledge(request: RequestRecord, ack: Ack, final = false): void {
    const where = `request ${request.id} (${request.kind}, producer ${request.producer}, server ${request.epoch})`;
    const events = request.batches.flat();
    request.state = "acked";
    this.ackedRequests++;
    if (ack.kind === "results") {
      const wrong: string[] = [];
      if (ack.results.length !== events.length) wrong.push(`${ack.results.length} results for ${events.length} events`);
      let lastAccepted = request.floorSeq;
      ack.results.forEach((result, i) => {
        const tracked = events[i];
        if (tracked === undefined) return;
        const id = tracked.event.eventId;
        if (result.status === Status.CONFLICT) wrong.push(`${id} answered CONFLICT for a re-send with the identical payload`);
        else if (result.status !== Status.ACCEPTED && result.status !== Status.DUPLICATE) wrong.push(`${id} answered status ${result.status}`);
        if (!(result.seq > 0)) wrong.push(`${id} answered without a seq (${result.seq})`);
        if (request.fresh.has(tracked) && result.status !== Status.ACCEPTED) {
          wrong.push(`${id} was sent for the first time but answered ${Status[result.status]} (seq ${result.seq})`);
        }
        if (result.status === Status.ACCEPTED) {
          if (result.seq <= lastAccepted) wrong.push(`${id} stored as seq ${result.seq}, not above seq ${lastAccepted} answered before it (commit order)`);
          lastAccepted = Math.max(lastAccepted, result.seq);
          if (final) this.finalAccepted++;
        }
        const disagreement = this.agreeOnSeq(tracked, result.seq);
        if (disagreement !== undefined) wrong.push(`${id} ${disagreement}`);
        this.markAcked(tracked);
        this.maxAnsweredSeq = Math.max(this.maxAnsweredSeq, result.seq);
      });
      if (wrong.length > 0) this.problem(`${where}: ${wrong.slice(0, 3).join("; ")}${wrong.length > 3 ? `; and ${wrong.length - 3} more` : ""}`);
    } else {
      const distinct = new Set(events).size;
      const wrong: string[] = [];
      if (ack.received !== events.length) wrong.push(`received ${ack.received} of ${events.length} events sent`);
      if (ack.batches !== request.batches.length) wrong.push(`batches ${ack.batches} of ${request.batches.length} sent`);
      if (ack.conflicts !== 0) wrong.push(`${ack.conflicts} CONFLICT for re-sends with identical payloads`);
      if (ack.accepted + ack.duplicates + ack.conflicts !== ack.received) wrong.push(`accepted + duplicates + conflicts != received`);
      if (ack.accepted < request.fresh.size) wrong.push(`accepted ${ack.accepted} < ${request.fresh.size} events sent for the first time`);
      if (ack.accepted > distinct) wrong.push(`accepted ${ack.accepted} > ${distinct} distinct events`);
      if (wrong.length > 0) this.problem(`${where}: stream totals wrong: ${wrong.join("; ")}`);
      if (final) this.finalAccepted += ack.accepted;
      for (const tracked of events) this.markAcked(tracked);
    }
    this.settle(request);
  }

  /** Records a failed request: it acknowledged nothing. `failure` says when and how, for the report. */
  fail(request: RequestRecord, state: Exclude<RequestState, "pending" | "acked">, failure: string): void {
    request.state = state;
    request.failure = failure;
    if (state === "failed") this.problem(`request ${request.id} (${request.kind}, producer ${request.producer}, server ${request.epoch}) failed without a clean refusal, ${failure}`);
    this.settle(request);
  }

  private settle(request: RequestRecord): void {
    this.pool.push(...request.fresh);
  }

  private markAcked(tracked: Tracked): void {
    if (!tracked.acked) this.ackedEvents++;
    tracked.acked = true;
  }

  /** Records the seq an answer gave; says how it disagrees with earlier answers or the file, if it does. */
  private agreeOnSeq(tracked: Tracked, seq: number): string | undefined {
    let disagreement: string | undefined;
    if (tracked.ackedSeq !== undefined && tracked.ackedSeq !== seq) {
      disagreement = `answered seq ${seq}, but an earlier answer said seq ${tracked.ackedSeq} (lost and stored again?)`;
    } else if (tracked.storedSeq !== undefined && tracked.storedSeq !== seq) {
      disagreement = `answered seq ${seq}, but the file held it as seq ${tracked.storedSeq}`;
    }
    tracked.ackedSeq ??= seq;
    return disagreement;
  }

  /**
   * Checks a file snapshot taken while no server runs: the invariants, every
   * acknowledged event present under the seq it was acknowledged with, no
   * row changed or renumbered, new rows numbered above all earlier ones, and
   * for requests answered or cut since the last check, their events stored
   * in the order sent and each batch whole or not at all. Row contents are
   * compared for rows new since the last check, or for all rows when `full`.
   */
  checkFile(file: StoreFile, label: string, full = false): void {
    for (const violation of fileInvariantViolations(file)) this.problem(`${label}: ${violation}`);
    this.duplicatesStored = Math.max(this.duplicatesStored, file.rows.length - new Set(file.rows.map((r) => eventKey(r.topic, r.event_id))).size);
    if (file.counters.conflicts !== 0) this.problem(`${label}: counters.conflicts is ${file.counters.conflicts}, but every re-send was identical`);
    const found = new Findings();

    const storedNow = new Map<string, number>();
    let maxSeq = this.checkedMaxSeq;
    for (const row of file.rows) {
      const key = eventKey(row.topic, row.event_id);
      storedNow.set(key, row.seq);
      maxSeq = Math.max(maxSeq, row.seq);
      const tracked = this.events.get(key);
      if (tracked === undefined) {
        found.add("stored but never sent", `${row.topic}/${row.event_id} (seq ${row.seq})`);
        continue;
      }
      if (tracked.storedSeq === undefined || full) {
        if (row.payload !== canonicalPayload(tracked.event.payload)) found.add("stored with another payload", `${row.event_id}: ${row.payload.slice(0, 200)}`);
        if (row.ts !== storedTimestamp(tracked.event)) found.add("stored with another timestamp", `${row.event_id}: ${row.ts}`);
        if (row.source !== tracked.event.source) found.add("stored with another source", `${row.event_id}: ${row.source}`);
      }
      if (tracked.storedSeq === undefined) {
        if (row.seq <= this.checkedMaxSeq) found.add(`new since the last check, but numbered at or below its highest seq ${this.checkedMaxSeq}`, `${row.event_id} (seq ${row.seq})`);
        if (tracked.ackedSeq !== undefined && tracked.ackedSeq !== row.seq) {
          found.add("stored under another seq than acknowledged", `${row.event_id} acknowledged as seq ${tracked.ackedSeq}, stored as seq ${row.seq}`);
        }
        tracked.storedSeq = row.seq;
      } else if (tracked.storedSeq !== row.seq) {
        found.add("renumbered since an earlier check", `${row.event_id} from seq ${tracked.storedSeq} to seq ${row.seq}`);
      }
    }
    this.checkedMaxSeq = maxSeq;

    for (const tracked of this.events.values()) {
      if (tracked.storedSeq !== undefined && !storedNow.has(tracked.key)) {
        found.add("in the file at an earlier check and now gone", `${tracked.event.eventId} (seq ${tracked.storedSeq})`);
      }
      if (tracked.acked && !storedNow.has(tracked.key) && !this.lost.has(tracked.key)) {
        this.lost.add(tracked.key);
        found.add("LOST: acknowledged but not in the file", `${tracked.event.topic}/${tracked.event.eventId}${tracked.ackedSeq === undefined ? "" : ` (acknowledged as seq ${tracked.ackedSeq})`}`);
      }
    }

    for (const request of this.requests) {
      if (request.orderChecked || (request.state !== "acked" && request.state !== "cut")) continue;
      this.checkOrder(request, storedNow, found);
      request.orderChecked = true;
    }
    found.report(label, (text) => this.problem(text));
  }

  /**
   * Events a request sent first are stored, if at all, in the order sent and
   * above every seq answered before it; a batch is stored whole or not at all;
   * and of a cut stream, the stored batches are a prefix of those sent.
   */
  private checkOrder(request: RequestRecord, stored: Map<string, number>, found: Findings): void {
    const where = `request ${request.id} (${request.kind}, producer ${request.producer}, server ${request.epoch}, ${request.state})`;
    let previous = request.floorSeq;
    let gapAt: number | undefined;
    request.batches.forEach((batch, b) => {
      const fresh = batch.filter((t) => request.fresh.has(t));
      if (fresh.length === 0) return;
      const seqs = fresh.map((t) => stored.get(t.key)).filter((s): s is number => s !== undefined);
      if (seqs.length !== 0 && seqs.length !== fresh.length) found.add("batch partly stored", `${where} batch ${b}: ${seqs.length} of ${fresh.length} new events`);
      if (seqs.length === 0) {
        gapAt ??= b;
        return;
      }
      if (gapAt !== undefined) found.add("batch stored although an earlier batch of its stream was not", `${where}: batch ${b} stored, batch ${gapAt} not`);
      const late = seqs.find((seq) => seq <= previous);
      if (late !== undefined) found.add("stored out of the order sent", `${where} batch ${b}: seq ${late} not above ${previous}`);
      previous = Math.max(previous, ...seqs);
    });
  }

  /** Events sent at least once but not in the file at the last check. */
  unstored(): Tracked[] {
    return [...this.events.values()].filter((t) => t.storedSeq === undefined);
  }
}
