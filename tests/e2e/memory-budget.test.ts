import { create, toBinary } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishStreamRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { makeEvent } from "../support/events.js";
import { grpcFrame, grpcStatusOf, type RawResponse } from "../support/raw-http.js";
import { startServer, type TestServer } from "../support/server.js";

const MiB = 1024 * 1024;
/** The smallest budget a 1 MiB message limit allows (11 bytes of heap per wire byte): one full message fills it. */
const maxMessageBytes = MiB;
const budgetBytes = 12 * MiB;

interface OpenStream {
  stream: http2.ClientHttp2Stream;
  response: Promise<RawResponse>;
}

/** A raw gRPC PublishStream on its own connection, so one stream's flow control cannot hold up another's. */
function openPublishStream(url: string): OpenStream {
  const session = http2.connect(url);
  session.on("error", () => undefined);
  const stream = session.request({ ":method": "POST", ":path": "/aggregator.v1.AggregatorService/PublishStream", "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => undefined);
  const response = new Promise<RawResponse>((resolve) => {
    let headers: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    stream.on("response", (h) => (headers = Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)]))));
    stream.on("trailers", (t) => (trailers = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, String(v)]))));
    stream.on("data", () => undefined);
    stream.on("close", () => {
      session.close();
      resolve({ status: Number(headers[":status"] ?? 0), statusText: "", headers, trailers, body: Buffer.alloc(0), rstCode: stream.rstCode ?? 0 });
    });
  });
  return { stream, response };
}

/**
 * Stats on a connection of its own: a keep-alive connection that carried a
 * refused body is sometimes reset when reused (an open question), and these
 * tests are about the budget, not about that.
 */
function stats(url: string): Promise<{ memory_held_bytes: number; unique_processed: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/stats`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as { memory_held_bytes: number; unique_processed: number }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** Polls Stats until `done` holds; the server is on loopback, so each poll is a millisecond or two. */
async function until(url: string, done: (s: Awaited<ReturnType<typeof stats>>) => boolean): Promise<Awaited<ReturnType<typeof stats>>> {
  for (;;) {
    const s = await stats(url);
    if (done(s)) return s;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("the memory budget", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ args: ["--max-message-bytes", String(maxMessageBytes), "--memory-budget-bytes", String(budgetBytes)] });
  });

  afterAll(async () => {
    await server.stop();
  });

  it("holds a stream message's share from its length prefix on, makes the next message wait unread, and refuses a REST body it cannot hold", async () => {
    // A stream announces a full-size message and sends nothing more: its share is taken from the prefix alone.
    const hog = openPublishStream(server.url);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(maxMessageBytes - 5, 1);
    hog.stream.write(prefix);
    const held = await until(server.url, (s) => s.memory_held_bytes >= 11 * (maxMessageBytes - 5));
    expect(held.memory_held_bytes).toBeLessThanOrEqual(budgetBytes);

    // A REST body that does not fit in what is left is refused at once, before it is read.
    const refused = await fetch(`${server.url}/publish`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ events: Array.from({ length: 400 }, () => ({ topic: "budget", event_id: randomUUID(), timestamp: "2025-10-24T10:00:00Z", source: "t", payload: { pad: "x".repeat(500) } })) }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { code: string; message: string }).message).toMatch(/memory budget/);

    // A second stream's message must wait for its share: its events are not stored while the first stream holds the budget.
    const events = Array.from({ length: 200 }, () => makeEvent({ topic: "budget-wait", payload: { pad: "y".repeat(500) } }));
    const waiting = openPublishStream(server.url);
    waiting.stream.end(grpcFrame(toBinary(PublishStreamRequestSchema, create(PublishStreamRequestSchema, { events }))));
    const before = await stats(server.url);
    // Give the server every chance to (wrongly) read and commit it: a round of Stats calls is many event-loop turns.
    for (let i = 0; i < 20; i++) expect((await stats(server.url)).unique_processed).toBe(before.unique_processed);

    // The first stream goes away: its share comes back, and the waiting message is read and committed.
    hog.stream.close(http2.constants.NGHTTP2_CANCEL);
    const answer = await waiting.response;
    expect(grpcStatusOf(answer)?.code).toBe(0);
    const after = await until(server.url, (s) => s.memory_held_bytes < MiB);
    expect(after.unique_processed).toBe(before.unique_processed + events.length);
  });
});
