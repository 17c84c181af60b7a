/**
 * Connection limits against real servers started with small limits: what a
 * client that holds connections, goes quiet, or stops reading gets.
 * No timed assertions: each test waits for the server to act, within the
 * test timeout.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import http2 from "node:http2";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

/** A raw TCP connection that can send HTTP/1.1 by hand and tells when the server closes it. */
class RawConnection {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private received = "";
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString();
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => this.socket.on("close", () => resolve()));
  }

  /** Everything received since the last send. */
  text(): string {
    return this.received;
  }

  /** Sends raw bytes, forgetting what was received before. */
  send(text: string): void {
    this.received = "";
    this.socket.write(text);
  }

  /** Sends a GET and resolves with the status line of the answer. */
  async get(path: string): Promise<string> {
    this.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    return this.nextStatusLine();
  }

  async nextStatusLine(): Promise<string> {
    while (!this.received.includes("\r\n")) {
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), this.closed]);
      if (this.socket.destroyed && !this.received.includes("\r\n")) return "closed";
    }
    return this.received.split("\r\n", 1)[0]!;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("--max-connections", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-connections", "2"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes connections beyond the limit at once, and keeps serving those within it", async () => {
    const first = new RawConnection(server.port);
    const second = new RawConnection(server.port);
    expect(await first.get("/health")).toBe("HTTP/1.1 200 OK");
    expect(await second.get("/health")).toBe("HTTP/1.1 200 OK");
    const third = new RawConnection(server.port);
    await third.closed;
    expect(await first.get("/health")).toBe("HTTP/1.1 200 OK");
    first.socket.destroy();
    second.socket.destroy();
    await Promise.all([first.closed, second.closed]);
    // A slot freed is a slot available again, once the server has seen the close.
    let answer = "";
    for (let attempt = 0; attempt < 100 && answer !== "HTTP/1.1 200 OK"; attempt++) {
      if (attempt > 0) await sleep(100);
      const fourth = new RawConnection(server.port);
      answer = await fourth.get("/health");
      fourth.socket.destroy();
    }
    expect(answer).toBe("HTTP/1.1 200 OK");
  });

  it("refuses a client deadline longer than a day with invalid_argument", async () => {
    const client = grpcClient(server.url);
    const err = await client.stats({}, { timeoutMs: 25 * 3_600_000 }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((await client.stats({}, { timeoutMs: 3_600_000 })).received).toBeGreaterThanOrEqual(0n);
  });
});

describe("--idle-timeout-ms and --request-timeout-ms", () => {
  let server: TestServer;
  beforeAll(async () => {
    // Short, but not so short that a loaded machine's pause between a client's connect and its first request looks idle.
    server = await startServer({ args: ["--idle-timeout-ms", "1000", "--request-timeout-ms", "1000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes a connection that never sends a byte", async () => {
    const connection = new RawConnection(server.port);
    await connection.closed;
  });

  it("closes an HTTP/1.1 keep-alive connection that stays idle", async () => {
    const connection = new RawConnection(server.port);
    expect(await connection.get("/health")).toBe("HTTP/1.1 200 OK");
    await connection.closed;
  });

  it("answers 408 to an HTTP/1.1 request whose headers never end, and closes it", async () => {
    const connection = new RawConnection(server.port);
    connection.socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    expect(await connection.nextStatusLine()).toBe("HTTP/1.1 408 Request Timeout");
    await connection.closed;
  });

  it("sends GOAWAY to an HTTP/2 connection without open streams", async () => {
    const session = http2.connect(server.url);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ":path": "/health" });
      stream.on("error", reject);
      stream.on("end", resolve);
      stream.resume();
    });
    await goaway;
    await closed;
  });

  it("resets an HTTP/2 stream on which nothing moves, releasing the stream", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      // A PublishStream whose client sends headers and then nothing, ever.
      const stream = session.request(
        { ":method": "POST", ":path": "/aggregator.v1.AggregatorService/PublishStream", "content-type": "application/grpc", te: "trailers" },
        { endStream: false },
      );
      stream.on("error", () => undefined);
      stream.resume();
      const rstCode = await new Promise<number>((resolve) => stream.on("close", () => resolve(stream.rstCode ?? -1)));
      expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
      // Cut by us, not a fault: no error in the log.
      expect(server.logs.filter((line) => line.includes('"level":50'))).toEqual([]);
    } finally {
      session.destroy();
    }
  });

  it("keeps a quiet health Watch open past both timeouts", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const watch = new AbortController();
    const updates = health.watch({}, { signal: watch.signal })[Symbol.asyncIterator]();
    expect((await updates.next()).done).toBe(false);
    const next = updates.next().then(
      () => "message or end",
      (err: unknown) => `error: ${String(err)}`,
    );
    const outcome = await Promise.race([next, sleep(3_000).then(() => "still open")]);
    expect(outcome).toBe("still open");
    watch.abort();
    await next;
  });
});

describe("--request-timeout-ms alone", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--request-timeout-ms", "500"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("resets an HTTP/2 stream whose client stops reading the answer", async () => {
    const topic = `limits.${randomUUID()}`;
    const client = grpcClient(server.url);
    const payload = { text: "x".repeat(2000) };
    for (let i = 0; i < 3; i++) await client.publish({ events: Array.from({ length: 200 }, () => makeEvent({ topic, payload })) });

    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      // About 1.2 MB of answer against the client's 64 KiB stream window, never read.
      const stream = session.request({ ":path": `/events?topic=${topic}&limit=1000` });
      stream.on("error", () => undefined);
      stream.pause();
      const rstCode = await new Promise<number>((resolve) => stream.on("close", () => resolve(stream.rstCode ?? -1)));
      expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });
});

describe("draining", () => {
  it("answers a request on an idle HTTP/1.1 connection with a clean 503 and Connection: close, not a reset", async () => {
    const server = await startServer();
    const connection = new RawConnection(server.port);
    expect(await connection.get("/health")).toBe("HTTP/1.1 200 OK");
    const stopped = server.stop("SIGTERM");
    while (!server.logs.some((line) => line.includes("shutting down"))) await sleep(10);
    connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await connection.closed;
    const answer = connection.text();
    expect(answer.split("\r\n", 1)[0]).toBe("HTTP/1.1 503 Service Unavailable");
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(await stopped).toBe(0);
  });
});
