/**
 * The bad-input matrix (issue #4): every way a publish request can be wrong,
 * sent as raw bytes over every entry point. Each row says what the server
 * answers; every row also proves that nothing of the refused request was
 * stored and that the answer leaks no internals. The file prints the matrix
 * as a markdown table (input | protocol | answer), so it doubles as the
 * documentation of how tally refuses bad input.
 *
 * A row whose answer is not yet what it should be carries a `gap`: the answer
 * the server gives today and why it falls short. The row passes on either
 * answer and the table marks the gap, so fixing the server needs no test
 * change, and a third, unexpected answer still fails.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventSchema, PublishRequestSchema, PublishResponseSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { codeToString as codeName } from "@connectrpc/connect/protocol-connect";
import { httpStatusFor } from "../../src/answers/http-status.js";
import { connectJsonClient, grpcClient } from "../support/clients.js";
import { jsonEvent, makeEvent } from "../support/events.js";
import {
  connectHttpStatus,
  deepPayloadPublishRequest,
  grpcFrame,
  grpcStatusOf,
  http1Request,
  http1RawExchange,
  http2Request,
  rstCodeName,
  type RawResponse,
} from "../support/raw-http.js";
import { limitArgs, startServer, type TestServer } from "../support/server.js";

/** Small limits, so that "over the limit" inputs stay small and fast. */
const limits = { maxBatch: 100, maxMessageBytes: 256 * 1024, maxPayloadBytes: 1024 };

let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    args: [...limitArgs(limits), "--durability", "normal"],
  });
});

/** What each row answered, in order, for the markdown table. */
const answered: { input: string; protocol: Protocol; answer: Answer; note: string | undefined; gap: string | undefined }[] = [];

afterAll(async () => {
  console.log(markdownTable());
  expect(await server.stop()).toBe(0);
});

// ---------------------------------------------------------------------------
// Entry points: how a request body reaches the server on each protocol.
// ---------------------------------------------------------------------------

type Protocol =
  | "REST"
  | "Connect JSON"
  | "Connect binary"
  | "gRPC"
  | "gRPC-Web"
  | "gRPC (JSON codec)"
  | "gRPC-Web (JSON codec)"
  | "gRPC over HTTP/1.1"
  | "HTTP/1.1 (any route)";

const publishPath = "/aggregator.v1.AggregatorService/Publish";
const publishStreamPath = "/aggregator.v1.AggregatorService/PublishStream";

const send = {
  rest: (body: string | Uint8Array, headers: Record<string, string> = { "content-type": "application/json" }) =>
    http1Request(server.url, { path: "/publish", headers, body }),
  connectJson: (body: string | Uint8Array, headers: Record<string, string> = { "content-type": "application/json" }) =>
    http1Request(server.url, { path: publishPath, headers, body }),
  connectBinary: (body: Uint8Array) => http2Request(server.url, { path: publishPath, headers: { "content-type": "application/proto" }, body }),
  /** gRPC over HTTP/2; `framed` false sends the bytes without the gRPC length prefix. */
  grpc: (body: Uint8Array, { framed = true, path = publishPath, headers = {} as Record<string, string> } = {}) =>
    http2Request(server.url, { path, headers: { "content-type": "application/grpc", te: "trailers", ...headers }, body: framed ? grpcFrame(body) : body }),
  grpcWeb: (body: Uint8Array, { framed = true } = {}) =>
    http1Request(server.url, { path: publishPath, headers: { "content-type": "application/grpc-web+proto" }, body: framed ? grpcFrame(body) : body }),
};

/** The three binary entry points a protobuf-encoded PublishRequest can take. */
const binaryProtocols = [
  ["Connect binary", (bytes: Uint8Array) => send.connectBinary(bytes)],
  ["gRPC", (bytes: Uint8Array) => send.grpc(bytes)],
  ["gRPC-Web", (bytes: Uint8Array) => send.grpcWeb(bytes)],
] as const;

// ---------------------------------------------------------------------------
// Answers, normalized across protocols.
// ---------------------------------------------------------------------------

interface Answer {
  /** HTTP status (200 for gRPC, whose outcome is in grpc-status); 0 for a reset stream. */
  http: number;
  /** Connect code name ("invalid_argument"), "ok", "RST_STREAM", or "" when the answer carries none. */
  code: string;
  message: string;
  /** The status as it travelled: "400", "grpc-status 3", "HTTP/2 stream reset". */
  wire: string;
}

function answerOf(protocol: Protocol, res: RawResponse): Answer {
  if (res.rstCode !== 0 && res.status === 0) {
    return { http: 0, code: "RST_STREAM", message: rstCodeName(res.rstCode), wire: "HTTP/2 stream reset, no response" };
  }
  const grpc = grpcStatusOf(res);
  if (grpc !== undefined) {
    const code = grpc.code === 0 ? "ok" : codeName(grpc.code as Code);
    const message = grpc.code === 0 ? describePublishResponse(unframe(res.body)) : grpc.message;
    const via = protocol === "gRPC over HTTP/1.1" ? "HTTP/1.1 200 with chunked trailers " : "";
    return { http: res.status, code, message, wire: `${via}grpc-status ${grpc.code}` };
  }
  const text = res.body.toString("utf8");
  if (res.status === 200) {
    const message = /json/.test(res.headers["content-type"] ?? "") ? describeJsonPublishResponse(text) : describePublishResponse(res.body);
    return { http: 200, code: "ok", message, wire: "200" };
  }
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    return { http: res.status, code: body.code ?? "", message: body.message ?? "", wire: String(res.status) };
  } catch {
    // No body to read a message from: the reason phrase is all the client gets (HTTP/2 has none).
    return { http: res.status, code: "", message: res.statusText, wire: `${res.status}, no body` };
  }
}

function shown(answer: Answer, wire = answer.wire): string {
  if (answer.code === "RST_STREAM") return `${wire}: RST_STREAM ${answer.message}`;
  if (answer.code === "") return answer.message === "" ? wire : `${wire}, only the reason phrase "${answer.message}"`;
  return `${wire} ${answer.code}: ${answer.message}`;
}

function unframe(body: Buffer): Buffer {
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

function describePublishResponse(bytes: Uint8Array): string {
  const r = fromBinary(PublishResponseSchema, bytes);
  return `accepted ${r.accepted}, duplicates ${r.duplicates}, conflicts ${r.conflicts}`;
}

function describeJsonPublishResponse(text: string): string {
  const r = JSON.parse(text) as { accepted: number; duplicates: number; conflicts: number };
  return `accepted ${r.accepted}, duplicates ${r.duplicates}, conflicts ${r.conflicts}`;
}

// ---------------------------------------------------------------------------
// The matrix.
// ---------------------------------------------------------------------------

/** What a row must answer. `http` defaults to what the protocol maps `code` to. */
interface Expected {
  code: string;
  message: RegExp;
  http?: number;
  /** Events the request stores; 0 (nothing) unless said. */
  stores?: number;
}

interface Outcome extends Expected {
  /** Said beside the answer in the table; a function reads it from the server after the request. */
  note?: string | (() => Promise<string>);
  /** The answer today when it falls short of the expected one, and why. */
  gap?: { now: Expected; note: string };
}

interface Row {
  input: string;
  protocol: Protocol;
  send: () => Promise<RawResponse>;
  outcome: Outcome;
}

const ok = (stores: number): Outcome => ({ code: "ok", message: new RegExp(`accepted ${stores}`), stores });
const invalid = (message: RegExp): Outcome => ({ code: "invalid_argument", message });

/** A fresh event id per request, so no row can collide with another's events. */
let sequence = 0;
const nextId = () => `bad-input-${process.pid}-${++sequence}`;
const event = (overrides: Record<string, unknown> = {}) => jsonEvent({ event_id: nextId(), ...overrides });
const events = (...items: unknown[]) => JSON.stringify({ events: items });
const binary = (...items: MessageInitShape<typeof EventSchema>[]) =>
  toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: items.map((e) => makeEvent({ eventId: nextId(), ...e })) }));
const deepJson = (depth: number) => `${'{"a":'.repeat(depth - 1)}{"a":1}${"}".repeat(depth - 1)}`;

/** Bytes with `raw` written over them where `marker` first occurs, for bytes no encoder would write. */
function patched(bytes: Uint8Array | string, marker: string, raw: number[]): Buffer {
  const out = Buffer.from(bytes);
  out.set(raw, out.indexOf(marker));
  return out;
}

/** How a lone surrogate looks in bytes when a system writes it anyway (WTF-8, CESU-8): not UTF-8. */
const surrogateBytes = [0xed, 0xa0, 0x80];

/** What every protocol says of a field whose text is not valid (codec/text-rules.ts). */
const invalidText = (field: string) => invalid(new RegExp(`events\\[0\\]\\.${field}: is not valid UTF-8 text \\(it holds an unpaired surrogate, or bytes that are not UTF-8\\)`));
const invalidPayloadText = (what: "key" | "string", at: string) =>
  invalid(new RegExp(`events\\[0\\]\\.payload: has a ${what} that is not valid UTF-8 text \\(it holds an unpaired surrogate, or bytes that are not UTF-8\\) at ${at}`));

/** A JSON body whose payload member n is the number literal `literal`, as written. */
const withNumber = (literal: string) => events(event({ payload: { n: "NUMBER" } })).replace('"NUMBER"', literal);
/** What a payload number a double cannot hold is refused with. */
const inexactNumber = invalid(/events\[0\]\.payload\.n: number 12345678901234567890 cannot be stored exactly \(it would read back as 12345678901234567000\); send it as a string/);

/**
 * One input, sent the way each family of protocols can carry it: `json` to
 * REST and Connect JSON, `binary` (a PublishRequest) to Connect binary, gRPC
 * and gRPC-Web. An input only some protocols can express lists only those.
 */
interface Case {
  input: string;
  json?: () => string | Uint8Array;
  binary?: () => Uint8Array;
  rest?: Outcome;
  connectJson?: Outcome;
  /** For Connect binary, gRPC and gRPC-Web alike. */
  binaryAnswer?: Outcome;
}

const long = "x".repeat(256);

/** The event id of the last request with a payload key "__proto__". */
let protoKeyEventId = "";

async function whatBecameOfProtoKey(): Promise<string> {
  const res = await http1Request(server.url, { method: "GET", path: "/events?topic=orders&limit=1000" });
  const stored = (JSON.parse(res.body.toString("utf8")) as { events: { event_id: string; payload: object }[] }).events.find((e) => e.event_id === protoKeyEventId);
  if (stored === undefined) return "not found in the store";
  return Object.hasOwn(stored.payload, "__proto__") ? "stored with the key" : "stored without the key: decoding dropped it silently";
}
/**
 * What an undecodable message is refused with: the request-level decode error
 * (connect-es's "parse binary: …", answered as invalid_argument by
 * rpc-edge.ts), or the violation of the event it breaks, once events are
 * decoded by our own code.
 */
const notDecodable = (detail: RegExp) => new RegExp(`^cannot decode the request message: ${detail.source}|is not a valid aggregator\\.v1\\.Event`);

const cases: Case[] = [
  {
    input: "malformed JSON",
    json: () => '{"events":[{"topic":',
    rest: invalid(/^body is not valid JSON/),
    connectJson: invalid(/cannot decode message aggregator\.v1\.PublishRequest from JSON/),
  },
  {
    input: "empty request (no events)",
    json: () => events(),
    binary: () => new Uint8Array(0),
    rest: invalid(/events: must contain at least one event/),
    connectJson: invalid(/events: must contain at least one event/),
    binaryAnswer: invalid(/events: must contain at least one event/),
  },
  {
    input: "wrong type: topic is a number",
    json: () => events(event({ topic: 42 })),
    rest: invalid(/events\[0\]\.topic: must be a string, got a number/),
    connectJson: invalid(/aggregator\.v1\.Event\.topic from JSON: expected string, got 42/),
  },
  {
    input: "wrong type: events is an object",
    json: () => JSON.stringify({ events: { topic: "orders" } }),
    rest: invalid(/events: must be an array of events/),
    connectJson: invalid(/aggregator\.v1\.PublishRequest\.events from JSON/),
  },
  {
    input: "wrong type: timestamp is a number",
    json: () => events(event({ timestamp: 1761300000 })),
    rest: invalid(/events\[0\]\.timestamp: must be a string, got a number/),
    connectJson: invalid(/google\.protobuf\.Timestamp from JSON/),
  },
  {
    input: "missing fields (an empty event)",
    json: () => events({}),
    binary: () => toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [{}] })),
    ...all(invalid(/events\[0\]\.topic: is required.*events\[0\]\.event_id: is required.*events\[0\]\.source: is required.*events\[0\]\.timestamp: is required.*events\[0\]\.payload: is required/)),
  },
  {
    input: "empty topic, event_id and source",
    json: () => events(event({ topic: "", event_id: "", source: "" })),
    binary: () => binary({ topic: "", eventId: "", source: "" }),
    ...all(invalid(/events\[0\]\.topic: is required.*events\[0\]\.event_id: is required.*events\[0\]\.source: is required/)),
  },
  {
    input: "topic, event_id and source of 256 characters",
    json: () => events(event({ topic: long, event_id: long, source: long })),
    binary: () => binary({ topic: long, eventId: long, source: long }),
    ...all(invalid(/events\[0\]\.topic: is 256 characters long, at most 255 allowed.*event_id: is 256.*source: is 256/)),
  },
  {
    input: "control characters and NUL bytes (topic \\u0001, event_id \\u0000, source \\n)",
    json: () => events(event({ topic: "orders\u0001", event_id: `${nextId()}\u0000`, source: "web\napp" })),
    binary: () => binary({ topic: "orders\u0001", eventId: `${nextId()}\u0000`, source: "web\napp" }),
    ...all(invalid(/events\[0\]\.topic: contains a control character.*event_id: contains a control character.*source: contains a control character/)),
  },
  // One rule for text (codec/text-rules.ts): a lone surrogate, and bytes that are not UTF-8, are refused in
  // every field over every protocol, never turned into U+FFFD. Binary carries a lone surrogate as its bytes.
  ...(["topic", "event_id", "source"] as const).map(
    (field): Case => ({
      input: `lone surrogate in ${field} (\\ud800; binary: its bytes ed a0 80)`,
      json: () => events(event({ [field]: "x-\ud800" })),
      binary: () => patched(binary({ [field === "event_id" ? "eventId" : field]: `x-LONE-${nextId()}` }), "LON", surrogateBytes),
      rest: invalidText(field),
      // protobuf-es refuses a string field that is not valid UTF-8 while it decodes, in its own words.
      connectJson: invalid(new RegExp(`aggregator\\.v1\\.Event\\.${field} from JSON: expected string: invalid UTF8`)),
      binaryAnswer: invalidText(field),
    }),
  ),
  {
    input: "lone surrogate in a payload key (\\ud800; binary: its bytes ed a0 80)",
    json: () => events(event({ payload: { ok: 1, nested: { "k\ud800": 1 } } })),
    binary: () => patched(binary({ payload: { ok: 1, nested: { kLON: 1 } } }), "LON", surrogateBytes),
    ...all(invalidPayloadText("key", "payload\\.nested")),
  },
  {
    input: "lone surrogate in a payload string (\\udc00; binary: its bytes ed b0 80)",
    json: () => events(event({ payload: { list: ["ok", "v\udc00"] } })),
    binary: () => patched(binary({ payload: { list: ["ok", "vLON"] } }), "LON", [0xed, 0xb0, 0x80]),
    ...all(invalidPayloadText("string", "payload\\.list\\[1\\]")),
  },
  {
    input: "bytes that are not UTF-8 in topic (ff)",
    json: () => patched(events(event({ topic: "orders-XQZ" })), "XQZ", [0xff]),
    binary: () => patched(binary({ topic: "orders-XQZ" }), "XQZ", [0xff]),
    // JSON: the check of the text before parsing (REST, and the RPC edge for Connect JSON); binary: its decoder.
    ...all(invalidText("topic")),
  },
  {
    input: "bytes that are not UTF-8 in a payload string (c3 28)",
    json: () => patched(events(event({ payload: { note: "cafXQZ" } })), "XQZ", [0xc3, 0x28]),
    binary: () => patched(binary({ payload: { note: "cafXQZ" } }), "XQZ", [0xc3, 0x28]),
    ...all(invalidPayloadText("string", "payload\\.note")),
  },
  {
    input: "timestamp not RFC 3339 (\"yesterday\")",
    json: () => events(event({ timestamp: "yesterday" })),
    rest: invalid(/events\[0\]\.timestamp: "yesterday" is not an RFC 3339 timestamp/),
    connectJson: invalid(/google\.protobuf\.Timestamp from JSON: invalid RFC 3339 string/),
  },
  {
    input: "timestamp out of range (year 10000 / seconds 253402300800)",
    json: () => events(event({ timestamp: "10000-01-01T00:00:00Z" })),
    binary: () => binary({ timestamp: { seconds: 253_402_300_800n, nanos: 0 } }),
    rest: invalid(/events\[0\]\.timestamp: "10000-01-01T00:00:00Z" is not an RFC 3339 timestamp/),
    connectJson: invalid(/google\.protobuf\.Timestamp from JSON: invalid RFC 3339 string/),
    binaryAnswer: invalid(/events\[0\]\.timestamp: is outside 0001-01-01T00:00:00Z to 9999-12-31/),
  },
  {
    input: "timestamp nanos out of range (1,000,000,000)",
    binary: () => binary({ timestamp: { seconds: 1_761_300_000n, nanos: 1_000_000_000 } }),
    binaryAnswer: invalid(/events\[0\]\.timestamp: is outside/),
  },
  {
    input: "payload not an object (a string)",
    json: () => events(event({ payload: "amount=100" })),
    rest: invalid(/events\[0\]\.payload: must be a JSON object, got a string/),
    connectJson: invalid(/cannot decode message google\.protobuf\.Struct from JSON "amount=100"/),
  },
  {
    input: "payload not an object (an array)",
    json: () => events(event({ payload: [1, 2] })),
    rest: invalid(/events\[0\]\.payload: must be a JSON object, got an array/),
    connectJson: invalid(/cannot decode message google\.protobuf\.Struct from JSON Array/),
  },
  {
    input: "payload null",
    json: () => events(event({ payload: null })),
    rest: invalid(/events\[0\]\.payload: is required/),
    connectJson: invalid(/events\[0\]\.payload: is required/),
  },
  {
    input: "payload with a number JSON cannot hold (1e400 / NaN)",
    json: () => events(event({ payload: { n: 1 } })).replace('"n":1', '"n":1e400'),
    binary: () => binary({ payload: { n: Number.NaN } }),
    rest: invalid(/events\[0\]\.payload: contains Infinity, which JSON cannot represent/),
    connectJson: invalid(/events\[0\]\.payload: contains Infinity, which JSON cannot represent/),
    binaryAnswer: invalid(/events\[0\]\.payload: contains NaN, which JSON cannot represent/),
  },
  {
    input: "payload number a double cannot hold (12345678901234567890)",
    json: () => withNumber("12345678901234567890"),
    binary: () => binary({ payload: { n: 12345678901234567890 } }),
    rest: inexactNumber,
    // protobuf-es would round it while it parses: the RPC edge reads the JSON text first (rpc/exact-json-body.ts).
    connectJson: inexactNumber,
    binaryAnswer: { ...ok(1), note: "binary protobuf carries the double itself: exact by construction" },
  },
  {
    input: "payload number beyond a double's smallest (1e-400)",
    json: () => withNumber("1e-400"),
    ...all(invalid(/events\[0\]\.payload\.n: number 1e-400 cannot be stored exactly \(it would read back as 0\)/)),
  },
  {
    input: "payload numbers spelled otherwise than they read back (1.50, 15e-1, 1e3, -0, 0.1, 9007199254740992)",
    json: () => events(event({ payload: { a: "A", b: "B", c: "C", d: "D", e: 0.1, f: 9007199254740992 } })).replace('"A"', "1.50").replace('"B"', "15e-1").replace('"C"', "1e3").replace('"D"', "-0"),
    // Values are compared, not spellings: each reads back as the number it spells.
    rest: ok(1),
    connectJson: ok(1),
  },
  {
    input: "payload over the limit (2,000 bytes, limit 1,024)",
    json: () => events(event({ payload: { blob: "p".repeat(2000) } })),
    binary: () => binary({ payload: { blob: "p".repeat(2000) } }),
    ...all(invalid(/events\[0\]\.payload: is 2011 bytes as JSON, at most 1024 allowed/)),
  },
  {
    input: "payload nested 40 levels (limit 32)",
    json: () => events(event({ payload: "DEEP" })).replace('"DEEP"', deepJson(40)),
    binary: () => deepPayloadPublishRequest(40, nextId()),
    rest: invalid(/events\[0\]\.payload: is nested deeper than 32 levels/),
    connectJson: invalid(/events\[0\]\.payload: is nested deeper than 32 levels/),
    // Validation's message, or that of a binary decoder that stops before validation does.
    binaryAnswer: invalid(/events\[0\]\.payload: is nested deeper than 32 levels|events\[0\]\.event: is not a valid aggregator\.v1\.Event: payload nests deeper/),
  },
  {
    input: "payload nested 10,000 levels",
    json: () => events(event({ payload: "DEEP" })).replace('"DEEP"', deepJson(10_000)),
    binary: () => deepPayloadPublishRequest(10_000, nextId()),
    rest: invalid(/events\[0\]\.payload: is nested deeper than 32 levels/),
    // protobuf-es stops at 100 nested messages, before validation sees the payload.
    connectJson: invalid(/cannot decode google\.protobuf\.Value from JSON: maximum recursion depth of 100 reached/),
    // protobuf-es stops at 100 nested messages while decoding the request (rpc-edge.ts answers it as invalid_argument).
    binaryAnswer: invalid(
      /nested deeper than 32 levels|nests deeper than|^cannot decode the request message: cannot decode message google\.protobuf\.Struct from binary: maximum recursion depth of 100 reached$/,
    ),
  },
  {
    input: 'payload key "__proto__"',
    json: () => events(jsonEvent({ event_id: (protoKeyEventId = nextId()), payload: "PROTO" })).replace('"PROTO"', '{"amount":1,"__proto__":{"x":1}}'),
    // protobuf-es cannot build a Struct key "__proto__" either: encode a key of the same length and rename it in the bytes.
    binary: () => {
      const request = create(PublishRequestSchema, { events: [makeEvent({ eventId: (protoKeyEventId = nextId()), payload: { amount: 1, PROTO_KEY: { x: 1 } } })] });
      const bytes = Buffer.from(toBinary(PublishRequestSchema, request));
      bytes.write("__proto__", bytes.indexOf("PROTO_KEY"), "latin1");
      return bytes;
    },
    rest: invalid(/events\[0\]\.payload: has the key "__proto__" at payload, which protobuf decoding would drop silently/),
    // Decoders other than REST's never show us the key: what became of it is read back from the store.
    connectJson: { ...ok(1), note: whatBecameOfProtoKey },
    // One payload-rules module: the same words as REST's.
    binaryAnswer: invalid(/events\[0\]\.payload: has the key "__proto__" at payload, which protobuf decoding would drop silently/),
  },
  {
    input: "one valid event, one invalid",
    json: () => events(event(), event({ source: "" })),
    binary: () => binary({}, { source: "" }),
    ...all(invalid(/\(1 invalid event\): events\[1\]\.source: is required/)),
  },
  {
    input: "batch over the limit (101 events, limit 100)",
    json: () => events(...Array.from({ length: 101 }, () => event())),
    binary: () => binary(...Array.from({ length: 101 }, () => ({}))),
    ...all(invalid(/events: has 101 events, at most 100 allowed per request/)),
  },
  {
    input: "message over the size limit (300 KB, limit 256 KiB)",
    json: () => events(event({ payload: { blob: "m".repeat(300_000) } })),
    binary: () => binary({ payload: { blob: "m".repeat(300_000) } }),
    rest: { code: "resource_exhausted", message: /body of 300\d{3} bytes exceeds the 262144-byte limit/, http: 413 },
    connectJson: { code: "resource_exhausted", message: /larger than configured readMaxBytes 262144/ },
    binaryAnswer: { code: "resource_exhausted", message: /larger than configured readMaxBytes 262144/ },
  },
];

function all(outcome: Outcome): Pick<Case, "rest" | "connectJson" | "binaryAnswer"> {
  return { rest: outcome, connectJson: outcome, binaryAnswer: outcome };
}

/** Bytes that are no PublishRequest, for the binary protocols. */
const corrupt: { input: string; bytes: Uint8Array; detail: RegExp }[] = [
  { input: "corrupt protobuf bytes (ff ff ff ff)", bytes: Uint8Array.from([0xff, 0xff, 0xff, 0xff]), detail: /premature EOF$/ },
  {
    input: "protobuf with a wrong wire type (topic as a varint)",
    bytes: Uint8Array.from([0x0a, 0x02, 0x08, 0x01]),
    detail: /(premature EOF|cannot decode)/,
  },
];

const rows: Row[] = [
  ...cases.flatMap((c): Row[] => [
    ...(c.json !== undefined && c.rest !== undefined ? [{ input: c.input, protocol: "REST" as const, send: () => send.rest(c.json!()), outcome: c.rest }] : []),
    ...(c.json !== undefined && c.connectJson !== undefined
      ? [{ input: c.input, protocol: "Connect JSON" as const, send: () => send.connectJson(c.json!()), outcome: c.connectJson }]
      : []),
    ...(c.binary !== undefined && c.binaryAnswer !== undefined
      ? binaryProtocols.map(([protocol, post]) => ({ input: c.input, protocol, send: () => post(c.binary!()), outcome: c.binaryAnswer! }))
      : []),
  ]),
  ...corrupt.flatMap(({ input, bytes, detail }) =>
    binaryProtocols.map(([protocol, post]) => ({
      input,
      protocol,
      send: () => post(bytes),
      outcome: invalid(notDecodable(detail)),
    })),
  ),
  {
    // Batches before the bad message stay committed (README, "All or nothing per request"); the stream ends there.
    input: "PublishStream: a valid batch, then corrupt protobuf bytes",
    protocol: "gRPC",
    send: () => send.grpc(Buffer.concat([grpcFrame(binary({})), grpcFrame(Uint8Array.from([0xff, 0xff, 0xff, 0xff]))]), { framed: false, path: publishStreamPath }),
    outcome: { ...invalid(/^cannot decode the request message: premature EOF$/), stores: 1, note: "the valid batch before it stays committed" },
  },
  {
    input: "payload number a double cannot hold (12345678901234567890)",
    protocol: "gRPC (JSON codec)",
    send: () => http2Request(server.url, { path: publishPath, headers: { "content-type": "application/grpc+json", te: "trailers" }, body: grpcFrame(Buffer.from(withNumber("12345678901234567890"))) }),
    outcome: inexactNumber,
  },
  {
    input: "payload number a double cannot hold (12345678901234567890)",
    protocol: "gRPC-Web (JSON codec)",
    send: () => http1Request(server.url, { path: publishPath, headers: { "content-type": "application/grpc-web+json" }, body: grpcFrame(Buffer.from(withNumber("12345678901234567890"))) }),
    outcome: inexactNumber,
  },
  {
    input: "PublishStream: a valid batch, then a payload number a double cannot hold",
    protocol: "gRPC (JSON codec)",
    send: () =>
      http2Request(server.url, {
        path: publishStreamPath,
        headers: { "content-type": "application/grpc+json", te: "trailers" },
        body: Buffer.concat([grpcFrame(Buffer.from(events(event()))), grpcFrame(Buffer.from(withNumber("12345678901234567890")))]),
      }),
    outcome: {
      ...invalid(/messages\[1\]\.events\[0\]\.payload\.n: number 12345678901234567890 cannot be stored exactly/),
      stores: 1,
      note: "the valid batch before it stays committed",
    },
  },
  {
    input: "body a JSON number (42)",
    protocol: "REST",
    send: () => send.rest("42"),
    outcome: invalid(/body: must be an event object, an array of events, or \{"events": \[\.\.\.\]\}/),
  },
  {
    input: "truncated gRPC frame (3 of 5 prefix bytes)",
    protocol: "gRPC",
    send: () => send.grpc(Uint8Array.from([0, 0, 0]), { framed: false }),
    outcome: invalid(/protocol error: incomplete envelope/),
  },
  {
    input: "truncated gRPC frame (length 100, 10 bytes sent)",
    protocol: "gRPC",
    send: () => send.grpc(grpcFrame(new Uint8Array(10), 0, 100), { framed: false }),
    outcome: invalid(/protocol error: incomplete envelope/),
  },
  {
    input: "truncated gRPC frame (length 100, 10 bytes sent)",
    protocol: "gRPC-Web",
    send: () => send.grpcWeb(grpcFrame(new Uint8Array(10), 0, 100), { framed: false }),
    outcome: invalid(/protocol error: incomplete envelope/),
  },
  {
    input: "gRPC frame declaring 2 GiB",
    protocol: "gRPC",
    send: () => send.grpc(grpcFrame(new Uint8Array(0), 0, 0x7fff_ffff), { framed: false }),
    outcome: { code: "resource_exhausted", message: /message size 2147483647 is larger than configured readMaxBytes 262144/ },
  },
  {
    input: "unframed bytes on a gRPC call (\"hello, world\")",
    protocol: "gRPC",
    send: () => send.grpc(Buffer.from("hello, world"), { framed: false }),
    outcome: { code: "resource_exhausted", message: /message size \d+ is larger than configured readMaxBytes/ },
  },
  {
    input: "two messages on a unary call",
    protocol: "gRPC",
    send: () => send.grpc(Buffer.concat([grpcFrame(binary({})), grpcFrame(binary({}))]), { framed: false }),
    outcome: { code: "unimplemented", message: /protocol error: received extra input message for unary method/ },
  },
  {
    input: "no message on a unary call",
    protocol: "gRPC",
    send: () => send.grpc(new Uint8Array(0), { framed: false }),
    outcome: { code: "unimplemented", message: /protocol error: missing input message for unary method/ },
  },
  {
    // The gRPC spec's answer for a compressed message without grpc-encoding, as grpc-go gives it.
    input: "compressed flag set, no grpc-encoding",
    protocol: "gRPC",
    send: () => send.grpc(grpcFrame(binary({}), 1), { framed: false }),
    outcome: { code: "internal", message: /received compressed envelope, but do not know how to decompress/ },
  },
  {
    input: "malformed grpc-timeout (\"soon\")",
    protocol: "gRPC",
    send: () => send.grpc(binary({}), { headers: { "grpc-timeout": "soon" } }),
    outcome: invalid(/protocol error: invalid grpc timeout value: soon/),
  },
  {
    input: "unknown grpc-encoding (snappy)",
    protocol: "gRPC",
    send: () => send.grpc(grpcFrame(binary({}), 1), { framed: false, headers: { "grpc-encoding": "snappy" } }),
    outcome: { code: "unimplemented", message: /unknown compression "snappy": supported encodings are gzip,br/ },
  },
  {
    input: "wrong content type (application/xml)",
    protocol: "REST",
    send: () => send.rest("<event/>", { "content-type": "application/xml" }),
    outcome: { code: "invalid_argument", http: 415, message: /content-type "application\/xml" is not supported; send application\/json/ },
  },
  {
    input: "wrong content type (text/xml)",
    protocol: "Connect JSON",
    send: () => send.connectJson("<event/>", { "content-type": "text/xml" }),
    outcome: { code: "invalid_argument", http: 415, message: /^content-type "text\/xml" is not supported by Publish; use application\/grpc, .*application\/json or application\/proto$/ },
  },
  {
    input: "wrong content type (text/plain)",
    protocol: "gRPC",
    send: () => http2Request(server.url, { path: publishPath, headers: { "content-type": "text/plain", te: "trailers" }, body: grpcFrame(binary({})) }),
    outcome: { code: "invalid_argument", http: 415, message: /^content-type "text\/plain" is not supported by Publish; use application\/grpc, / },
  },
  {
    // A content type of the gRPC family is answered the way gRPC clients read it: trailers-only, status in grpc-status.
    input: "wrong content type (application/grpc+xml)",
    protocol: "gRPC",
    send: () => http2Request(server.url, { path: publishPath, headers: { "content-type": "application/grpc+xml", te: "trailers" }, body: grpcFrame(binary({})) }),
    outcome: invalid(/^content-type "application\/grpc\+xml" is not supported by Publish; use application\/grpc, /),
  },
  {
    input: "unknown route (GET /nope)",
    protocol: "REST",
    send: () => http1Request(server.url, { method: "GET", path: "/nope" }),
    outcome: { code: "not_found", message: /no route for "GET \/nope"/ },
  },
  {
    input: "unknown method (/aggregator.v1.AggregatorService/Nope)",
    protocol: "Connect JSON",
    send: () => http1Request(server.url, { path: "/aggregator.v1.AggregatorService/Nope", headers: { "content-type": "application/json" }, body: "{}" }),
    outcome: { code: "unimplemented", http: 404, message: /no method "Nope" in service "aggregator\.v1\.AggregatorService"/ },
  },
  {
    input: "unknown method (/aggregator.v1.AggregatorService/Nope)",
    protocol: "gRPC",
    send: () => send.grpc(new Uint8Array(0), { path: "/aggregator.v1.AggregatorService/Nope" }),
    outcome: { code: "unimplemented", message: /no method "Nope" in service "aggregator\.v1\.AggregatorService"/ },
  },
  {
    input: "unknown service (/foo.v1.Bar/Baz)",
    protocol: "gRPC-Web",
    send: () => http1Request(server.url, { path: "/foo.v1.Bar/Baz", headers: { "content-type": "application/grpc-web+proto" }, body: grpcFrame(new Uint8Array(0)) }),
    outcome: { code: "unimplemented", message: /no method "Baz" in service "foo\.v1\.Bar"/ },
  },
  {
    input: "wrong HTTP method (DELETE /publish)",
    protocol: "REST",
    send: () => http1Request(server.url, { method: "DELETE", path: "/publish" }),
    outcome: { code: "method_not_allowed", http: 405, message: /"DELETE" is not allowed on \/publish; use POST/ },
  },
  {
    input: "wrong HTTP method (GET Publish, which has side effects)",
    protocol: "Connect JSON",
    send: () => http1Request(server.url, { method: "GET", path: `${publishPath}?encoding=json&message=%7B%7D` }),
    outcome: { code: "invalid_argument", http: 405, message: /^Publish only accepts POST, not "GET"$/, note: "with Allow: POST" },
  },
  {
    input: "application/grpc over HTTP/1.1 (an invalid event)",
    protocol: "gRPC over HTTP/1.1",
    send: () => http1Request(server.url, { path: publishPath, headers: { "content-type": "application/grpc", te: "trailers" }, body: grpcFrame(binary({ topic: "" })) }),
    // connect-node serves gRPC over HTTP/1.1 too, with the status in chunked-encoding trailers.
    outcome: invalid(/events\[0\]\.topic: is required/),
  },
  {
    input: "huge header (100 KB)",
    protocol: "HTTP/1.1 (any route)",
    send: () => http1RawExchange(server.url, { method: "GET", path: "/stats", headers: { "x-filler": "h".repeat(100 * 1024) } }),
    outcome: { code: "resource_exhausted", http: 431, message: /request headers exceed the 16384-byte limit/ },
  },
  {
    input: "huge header (100 KB)",
    protocol: "gRPC",
    send: () => send.grpc(binary({}), { headers: { "x-filler": "h".repeat(100 * 1024) } }),
    // HTTP/2 has no answer for a header block over the limit it announced: nghttp2 resets the
    // stream (the code depends on when it noticed) and may end the connection with GOAWAY.
    outcome: { code: "RST_STREAM", http: 0, message: /^(ENHANCE_YOUR_CALM|COMPRESSION_ERROR|REFUSED_STREAM|PROTOCOL_ERROR)$/ },
  },
];

// ---------------------------------------------------------------------------
// Running it.
// ---------------------------------------------------------------------------

interface Counters {
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  conflicts: number;
  rejected_invalid: number;
  rejected_overload: number;
}

async function counters(): Promise<Counters> {
  const res = await http1Request(server.url, { method: "GET", path: "/stats" });
  return JSON.parse(res.body.toString("utf8")) as Counters;
}

function expectedHttp(protocol: Protocol, expected: Expected): number {
  if (expected.http !== undefined) return expected.http;
  if (expected.code === "ok") return 200;
  if (protocol === "REST") return httpStatusFor(codeFromName(expected.code), "rest");
  if (protocol === "Connect JSON" || protocol === "Connect binary") return connectHttpStatus(codeFromName(expected.code));
  return 200; // gRPC and gRPC-Web: the outcome is in grpc-status
}

function codeFromName(name: string): Code {
  const code = Object.values(Code).find((c) => typeof c === "number" && codeName(c) === name);
  if (code === undefined) throw new Error(`no Connect code named ${name}`);
  return code as Code;
}

function matches(protocol: Protocol, answer: Answer, expected: Expected): boolean {
  return answer.code === expected.code && answer.http === expectedHttp(protocol, expected) && expected.message.test(answer.message);
}

/** Answers must not carry stack traces, file paths or SQL. */
const leak = /\n\s+at |\.[jt]s:\d+|\/(work|tmp|home|usr|var)\/|SQLITE|INSERT INTO|SELECT .* FROM/;

/** Every refused batch's message begins so; the table leaves it out. */
const batchPrefix = /invalid batch, none of its events stored \(\d+ invalid events?\): /;

function cell(text: string, max = 160): string {
  const oneLine = text.replace(batchPrefix, "").replace(/\s+/g, " ");
  return (oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine).replace(/\|/g, "\\|");
}

/**
 * The matrix as markdown: input | protocol | answer. Protocols that answered
 * an input alike (same code and message) share a line.
 */
function markdownTable(): string {
  const lines = [
    "",
    `Bad-input matrix (--max-batch ${limits.maxBatch}, --max-message-bytes ${limits.maxMessageBytes}, --max-payload-bytes ${limits.maxPayloadBytes}).`,
    'Messages of refused batches begin "invalid batch, none of its events stored (N invalid events): ", left out below.',
    "",
    "| input | protocol | answer |",
    "|---|---|---|",
  ];
  for (let i = 0; i < answered.length; ) {
    const first = answered[i]!;
    const same = (other: (typeof answered)[number]) =>
      other.input === first.input &&
      other.answer.code === first.answer.code &&
      other.answer.message === first.answer.message &&
      other.note === first.note &&
      other.gap === first.gap;
    let j = i;
    while (j < answered.length && same(answered[j]!)) j++;
    const group = answered.slice(i, j);
    const answer = shown(first.answer, [...new Set(group.map((g) => g.answer.wire))].join(" / "));
    const gap = first.gap === undefined ? "" : ` — **gap:** ${first.gap}`;
    const note = first.note === undefined ? "" : ` (${first.note})`;
    lines.push(`| ${cell(first.input)} | ${group.map((g) => g.protocol).join(", ")} | ${cell(answer)}${cell(note, 300)}${cell(gap, 300)} |`);
    i = j;
  }
  return lines.join("\n");
}

describe("bad input over every entry point", () => {
  it.each(rows.map((row) => [`${row.input} over ${row.protocol}`, row] as const))("%s", async (_name, row) => {
    const before = await counters();
    const answer = answerOf(row.protocol, await row.send());
    const after = await counters();

    const { outcome } = row;
    const gap = outcome.gap !== undefined && !matches(row.protocol, answer, outcome) && matches(row.protocol, answer, outcome.gap.now);
    const note = typeof outcome.note === "function" ? await outcome.note() : outcome.note;
    answered.push({ input: row.input, protocol: row.protocol, answer, note, gap: gap ? outcome.gap!.note : undefined });

    const expected = gap ? outcome.gap!.now : outcome;
    expect(answer.code, shown(answer)).toBe(expected.code);
    expect(answer.http, shown(answer)).toBe(expectedHttp(row.protocol, expected));
    expect(answer.message, shown(answer)).toMatch(expected.message);
    expect(answer.message).not.toMatch(leak);

    const stores = expected.stores ?? 0;
    expect(after.unique_processed - before.unique_processed, "events stored").toBe(stores);
    expect(after.received - before.received, "events received").toBe(stores);
    expect(after.duplicate_dropped).toBe(before.duplicate_dropped);
    expect(after.conflicts).toBe(before.conflicts);
    expect(after.rejected_overload).toBe(before.rejected_overload);
    // rejected_invalid may grow: it counts the events of refused requests.
  });

  it("answers a refused HTTP method on an RPC path with an Allow header", async () => {
    const res = await http1Request(server.url, { method: "GET", path: `${publishPath}?encoding=json&message=%7B%7D` });
    expect(res.status).toBe(405);
    expect(res.headers["allow"]).toBe("POST");
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
  });

  it("keeps serving afterwards: a normal publish works over every protocol, and the process is alive", async () => {
    const stats = await counters();
    expect(stats.received).toBe(stats.unique_processed + stats.duplicate_dropped + stats.conflicts);
    const good = await Promise.all([
      send.rest(JSON.stringify(event())),
      send.connectJson(events(event())),
      ...binaryProtocols.map(([, post]) => post(binary({}))),
    ]);
    expect(good.map((res) => answerOf("REST", res).code)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect((await grpcClient(server.url).publish({ events: [makeEvent()] })).accepted).toBe(1);
    expect((await http1Request(server.url, { method: "GET", path: "/health" })).status).toBe(200);
    expect(server.process.exitCode).toBeNull();
    expect(server.process.signalCode).toBeNull();
  });
});

describe('a payload key "__proto__"', () => {
  it("is refused over REST, naming where it is, and dropped silently over Connect JSON (a re-send without it is DUPLICATE)", async () => {
    const withKey = jsonEvent({ event_id: nextId(), payload: { amount: 1, nested: { ok: true } } });
    const text = JSON.stringify(withKey).replace('"ok":true', '"ok":true,"__proto__":{"evil":1}');
    const rest = answerOf("REST", await send.rest(text));
    expect(rest).toMatchObject({ http: 400, code: "invalid_argument" });
    expect(rest.message).toContain('events[0].payload: has the key "__proto__" at payload.nested');

    const client = connectJsonClient(server.url);
    const first = answerOf("Connect JSON", await send.connectJson(`{"events":[${text}]}`));
    expect(first.message).toBe("accepted 1, duplicates 0, conflicts 0");
    const stored = await client.events({ topic: "orders", afterSeq: 0n, limit: 1000 });
    expect(stored.events.find((e) => e.eventId === withKey.event_id)?.payload).toEqual({ amount: 1, nested: { ok: true } });
    const without = answerOf("Connect JSON", await send.connectJson(events(withKey)));
    expect(without.message).toBe("accepted 0, duplicates 1, conflicts 0");
  });

  it("is refused over gRPC too, so no protocol stores a payload another would read differently", async () => {
    const eventId = nextId();
    const bytes = Buffer.from(toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [makeEvent({ eventId, payload: { amount: 1, PROTO_KEY: { x: 1 } } })] })));
    bytes.write("__proto__", bytes.indexOf("PROTO_KEY"), "latin1");
    const answer = answerOf("gRPC", await send.grpc(bytes));
    expect(answer.code).toBe("invalid_argument");
    expect(answer.message).toContain('events[0].payload: has the key "__proto__"');
    const stored = await http1Request(server.url, { method: "GET", path: "/events?topic=orders&limit=1000" });
    const found = (JSON.parse(stored.body.toString("utf8")) as { events: { event_id: string }[] }).events.some((e) => e.event_id === eventId);
    expect(found).toBe(false);
  });
});
