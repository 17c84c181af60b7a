import type http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import type { Batches, Transport } from "./batches.js";
import { closedLoop, openLoop, Schedule } from "./dispatch.js";
import { connectH2c, grpcCall, grpcStatusNames, grpcUnary, grpcUnavailable, type GrpcReply } from "./grpc-frames.js";
import { RawHttp1Pool } from "./http1-raw.js";
import { keepAliveAgent, postJson, statusNameOfHttp, type HttpReply } from "./http-json.js";
import { readVarintFields } from "./proto-encode.js";
import type { LoadResult, RunRecord } from "./run-record.js";

/**
 * Drives one load run over one transport: the part the bench's load
 * generator and the publisher CLI share. Bodies come ready from `Batches`;
 * this only sends, waits, retries what the server refused for overload, and
 * records.
 */

export interface LoadSpec {
  /** Base URL of the server, e.g. http://127.0.0.1:8080. */
  target: string;
  transport: Transport;
  /** Concurrent unary calls or HTTP requests, or concurrent streams (one connection each). */
  concurrency: number;
  /** Events per second cap; undefined for as fast as the server answers. */
  rate?: number | undefined;
  /** Stop sending new batches after this many seconds. */
  durationSeconds?: number | undefined;
  /**
   * Unary transports only: send on schedule (`rate` required) whatever is in
   * flight, up to `concurrency` at once, for latency without coordinated omission.
   */
  openLoop?: boolean | undefined;
}

const publishPath = "/aggregator.v1.AggregatorService/Publish";
const publishStreamPath = "/aggregator.v1.AggregatorService/PublishStream";
const restPublishPath = "/publish";

/**
 * A refused unary call is tried again this often before its batch counts as
 * failed. The server refuses only while its queue is full and says when to
 * come back, so a few tries are plenty; many would hide a server that never
 * recovers.
 */
const maxAttempts = 20;

/** Wait before retrying when the server gave no retry-after. */
const defaultRetryMs = 100;

/** Runs the load described by `spec` and answers what it observed. */
export async function runLoad(spec: LoadSpec, batches: Batches, record: RunRecord): Promise<LoadResult> {
  if (spec.openLoop && spec.rate === undefined) throw new Error("an open-loop run needs a rate");
  if (spec.openLoop && spec.transport === "grpc-stream") throw new Error("open-loop runs are for unary transports");
  const schedule = new Schedule(batches, spec.rate, spec.durationSeconds);
  const target = new URL(spec.target);
  let lagsUs: Float64Array | undefined;
  let finish: () => void = () => undefined;
  let startedAt = 0;
  const begin = () => {
    schedule.start();
    startedAt = performance.now();
  };

  if (spec.transport === "grpc-stream") {
    const sessions = Array.from({ length: spec.concurrency }, () => connectH2c(spec.target));
    finish = () => sessions.forEach((s) => s.close());
    await Promise.all(sessions.map(waitConnected));
    begin();
    await runStreams(sessions, batches, schedule, record);
  } else {
    let call: (i: number) => Promise<void>;
    if (spec.transport === "grpc") {
      const session = connectH2c(spec.target);
      finish = () => session.close();
      await waitConnected(session);
      call = unaryCaller(batches, record, (i) => grpcUnary(session, publishPath, batches.body(i)), grpcOutcome);
    } else if (spec.transport === "rest") {
      // Raw keep-alive connections: Node's http client would be the bottleneck (http1-raw.ts).
      const pool = new RawHttp1Pool(spec.target, spec.concurrency);
      finish = () => pool.close();
      call = unaryCaller(batches, record, (i) => pool.post(restPublishPath, batches.body(i)), jsonOutcome);
    } else {
      const agent = keepAliveAgent(spec.concurrency);
      finish = () => agent.destroy();
      const url = new URL(publishPath, target);
      call = unaryCaller(batches, record, (i) => postJson(agent, url, batches.body(i)), jsonOutcome);
    }
    begin();
    if (spec.openLoop) lagsUs = (await openLoop(batches, spec.concurrency, schedule, call)).lagsUs;
    else await closedLoop(batches, spec.concurrency, schedule, call);
  }
  const elapsedSeconds = (performance.now() - startedAt) / 1000;
  finish();
  const result = record.result(elapsedSeconds);
  if (lagsUs !== undefined && lagsUs.length > 0) {
    const sorted = Float64Array.from(lagsUs).sort();
    result.scheduleLagUs = { p99: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0), max: Math.round(sorted[sorted.length - 1]!) };
  }
  return result;
}

/** Resolves once the HTTP/2 connection is up, so connecting is not timed. */
function waitConnected(session: http2.ClientHttp2Session): Promise<void> {
  if (session.connecting === false) return Promise.resolve();
  return new Promise((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
}

/** What an answer meant: acknowledged with counts, refused for now (retry), or failed. */
type Outcome =
  | { kind: "ok"; accepted: number; duplicates: number; conflicts: number }
  | { kind: "retry"; status: string; error: string; afterMs: number }
  | { kind: "failed"; status: string; error: string };

function grpcOutcome(reply: GrpcReply): Outcome {
  const status = grpcStatusNames[reply.status] ?? `Code${reply.status}`;
  if (reply.status === 0) {
    const [, accepted, duplicates, conflicts] = readVarintFields(reply.body, 3) as [number, number, number, number];
    return { kind: "ok", accepted, duplicates, conflicts };
  }
  const error = `rpc error: code = ${status} desc = ${reply.message}`;
  if (reply.status === grpcUnavailable) return { kind: "retry", status, error, afterMs: retryMs(reply.retryAfterSeconds) };
  return { kind: "failed", status, error };
}

function jsonOutcome(reply: HttpReply): Outcome {
  const status = statusNameOfHttp(reply.status);
  if (reply.status === 200) {
    const body = JSON.parse(reply.body) as { accepted?: number; duplicates?: number; conflicts?: number };
    return { kind: "ok", accepted: Number(body.accepted ?? 0), duplicates: Number(body.duplicates ?? 0), conflicts: Number(body.conflicts ?? 0) };
  }
  const error = `HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
  if (reply.status === 503) return { kind: "retry", status, error, afterMs: retryMs(reply.retryAfterSeconds) };
  return { kind: "failed", status, error };
}

function retryMs(seconds: number | undefined): number {
  return seconds !== undefined && Number.isFinite(seconds) ? seconds * 1000 : defaultRetryMs;
}

/** Makes the per-batch call of a unary transport: send, time, interpret, retry refusals, record. */
function unaryCaller<R>(batches: Batches, record: RunRecord, send: (i: number) => Promise<R>, outcomeOf: (reply: R) => Outcome) {
  return async (i: number): Promise<void> => {
    record.written += batches.end(i) - batches.start(i);
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let outcome: Outcome;
      try {
        outcome = outcomeOf(await send(i));
      } catch (err) {
        // A broken connection: the batch may or may not have been stored.
        outcome = { kind: "failed", status: "Unavailable", error: err instanceof Error ? err.message : String(err) };
      }
      const latencyUs = (performance.now() - started) * 1000;
      if (outcome.kind === "ok") {
        record.call("OK", latencyUs);
        record.ack(batches.start(i), batches.end(i));
        record.count(outcome);
        return;
      }
      record.call(outcome.status, latencyUs, outcome.error);
      if (outcome.kind === "failed" || attempt === maxAttempts) {
        record.failedBatches++;
        return;
      }
      await sleep(outcome.afterMs);
    }
  };
}

/**
 * Client streams, one per session, all taking batches in order from one
 * counter: a stream the server reads faster takes more, as a pool of
 * producers would. The server answers once per stream, after its last batch
 * has committed, so a stream's latency is the whole stream's duration.
 */
async function runStreams(sessions: http2.ClientHttp2Session[], batches: Batches, schedule: Schedule, record: RunRecord): Promise<void> {
  let next = 0;
  await Promise.all(
    sessions.map(async (session) => {
      const sent: number[] = [];
      let events = 0;
      const source = async () => {
        if (next >= batches.count) return undefined;
        const i = next++;
        if (!(await schedule.waitFor(i))) {
          next = batches.count;
          return undefined;
        }
        sent.push(i);
        events += batches.end(i) - batches.start(i);
        record.written += batches.end(i) - batches.start(i);
        return batches.body(i);
      };
      const started = performance.now();
      let reply: GrpcReply;
      try {
        reply = await grpcCall(session, publishStreamPath, source);
      } catch (err) {
        record.call("Unavailable", 0, err instanceof Error ? err.message : String(err));
        record.failedBatches += sent.length;
        return;
      }
      const latencyUs = (performance.now() - started) * 1000;
      const status = grpcStatusNames[reply.status] ?? `Code${reply.status}`;
      if (reply.status !== 0) {
        record.call(status, latencyUs, `rpc error: code = ${status} desc = ${reply.message}`);
        record.failedBatches += sent.length;
        return;
      }
      const [, received, accepted, duplicates, conflicts] = readVarintFields(reply.body, 4) as [number, number, number, number, number];
      if (received !== events) {
        record.call("OK", latencyUs, `stream answered received=${received} for ${events} events sent`);
        record.failedBatches += sent.length;
        return;
      }
      record.call("OK", latencyUs);
      for (const i of sent) record.ack(batches.start(i), batches.end(i));
      record.count({ accepted, duplicates, conflicts });
    }),
  );
}
