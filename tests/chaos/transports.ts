import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AggregatorService, PublishResult_Status as Status, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { eventJson } from "./workload.js";

/** How the chaos producers reach the server: each one exercises a different path into the same queue. */
export type ProducerKind = "grpc-stream" | "grpc-unary" | "rest-unary";

/**
 * No request may hang: a request the server never answers fails after this
 * long, and the failure is counted against the server. Far above any honest
 * answer (a group commit takes milliseconds), far below the test timeout.
 */
export const requestDeadlineMs = 20_000;

/** One event's answer from a unary publish, in request order. */
export interface EventResult {
  status: Status;
  seq: number;
}

/** What acknowledged a request: per-event results (unary) or the totals of a whole stream. */
export type Ack =
  | { kind: "results"; results: EventResult[] }
  | { kind: "totals"; received: number; accepted: number; duplicates: number; conflicts: number; batches: number };

/** Sends batches one way; `sent` is called as each batch is handed to the transport (the kill trigger counts them). */
export interface Sender {
  send(batches: readonly Event[][], sent: () => void): Promise<Ack>;
}

/** A sender for one producer kind against one server process (a new one after each restart: the port changes). */
export function senderFor(kind: ProducerKind, url: string): Sender {
  switch (kind) {
    case "grpc-stream":
      return grpcStreamSender(url);
    case "grpc-unary":
      return grpcUnarySender(url);
    case "rest-unary":
      return restSender(url);
  }
}

/** PublishStream over gRPC (connect-node, HTTP/2): every batch of a request is one message of one stream. */
function grpcStreamSender(url: string): Sender {
  const client = createClient(AggregatorService, createGrpcTransport({ baseUrl: url }));
  return {
    async send(batches, sent) {
      async function* messages() {
        for (const events of batches) {
          yield { events };
          sent();
        }
      }
      const totals = await client.publishStream(messages(), { timeoutMs: requestDeadlineMs });
      return {
        kind: "totals",
        received: Number(totals.received),
        accepted: Number(totals.accepted),
        duplicates: Number(totals.duplicates),
        conflicts: Number(totals.conflicts),
        batches: Number(totals.batches),
      };
    },
  };
}

/** Publish over gRPC (connect-node, HTTP/2): one batch per call. */
function grpcUnarySender(url: string): Sender {
  const client = createClient(AggregatorService, createGrpcTransport({ baseUrl: url }));
  return {
    async send(batches, sent) {
      const call = client.publish({ events: onlyBatch(batches) }, { timeoutMs: requestDeadlineMs });
      sent();
      const response = await call;
      return { kind: "results", results: response.results.map((r) => ({ status: r.status, seq: Number(r.seq) })) };
    },
  };
}

/** A REST answer other than 200, kept whole for the failure report. */
export class RestStatusError extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

const restStatuses: Record<string, Status> = { ACCEPTED: Status.ACCEPTED, DUPLICATE: Status.DUPLICATE, CONFLICT: Status.CONFLICT };

/** POST /publish with {"events": [...]} over HTTP/1.1 (fetch), as the older services do. */
function restSender(url: string): Sender {
  return {
    async send(batches, sent) {
      const body = JSON.stringify({ events: onlyBatch(batches).map(eventJson) });
      const call = fetch(`${url}/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(requestDeadlineMs),
      });
      sent();
      const response = await call;
      const text = await response.text();
      if (response.status !== 200) throw new RestStatusError(response.status, text);
      const answer = JSON.parse(text) as { results: { status: string; seq: number }[] };
      return {
        kind: "results",
        results: answer.results.map((r) => ({ status: restStatuses[r.status] ?? Status.UNSPECIFIED, seq: r.seq })),
      };
    },
  };
}

/**
 * Makes the process's first fetch before any server is killed. On Node 20.20
 * (undici 6.24) the first fetch of a process can hang until its abort signal
 * when the peer closes the connection just as it connects while the event loop
 * is busy, which a SIGKILL under load does; later fetches fail at once as they
 * should. The hang is the client's: a bare TCP server that dies reproduces it.
 */
export async function warmUpFetch(url: string): Promise<void> {
  const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(requestDeadlineMs) });
  await response.text();
}

function onlyBatch(batches: readonly Event[][]): Event[] {
  if (batches.length !== 1) throw new Error(`a unary request carries one batch, not ${batches.length}`);
  return batches[0]!;
}

/** How a request failed, as far as the producer can tell. */
export interface Failure {
  /** The server said or showed it did not process the request: `unavailable`, HTTP 503, REFUSED_STREAM, connection refused. */
  refused: boolean;
  text: string;
}

/**
 * Classifies a failed request. A refusal is a failure that leaves no doubt the
 * request was not processed, which is what a graceful shutdown must give.
 * connect-node reports an HTTP/2 REFUSED_STREAM (new streams after GOAWAY) as
 * `internal`; gRPC treats it as `unavailable`, and so do we.
 */
export function describeFailure(err: unknown): Failure {
  if (err instanceof RestStatusError) return { refused: err.status === 503, text: err.message };
  if (err instanceof ConnectError) {
    const refused = err.code === Code.Unavailable || (err.code === Code.Internal && err.rawMessage.includes("REFUSED_STREAM"));
    return { refused, text: `${Code[err.code]}: ${err.rawMessage}${causeText(err.cause)}` };
  }
  // fetch rejects with TypeError("fetch failed") and the socket error as its cause.
  const cause = causeCode(err);
  return { refused: cause === "ECONNREFUSED", text: `${String(err)}${causeText((err as { cause?: unknown }).cause)}` };
}

function causeCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

function causeText(cause: unknown): string {
  if (cause === undefined) return "";
  const code = causeCode(cause);
  return ` (cause: ${cause instanceof Error ? cause.message : String(cause)}${code !== undefined ? `, ${code}` : ""})`;
}
