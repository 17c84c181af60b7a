/**
 * Limits on what lives long, connections and calls, against real servers
 * started with small limits, driven by raw sockets, node:http2,
 * connect-node and grpc-js. Clients that must count as another address
 * connect from 127.0.0.2 to 127.0.0.9 (all of 127/8 is loopback on Linux).
 * No timed assertions: each test waits for the server to act, within the
 * test timeout.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { execFileSync } from "node:child_process";
import { once, setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { dirname, join } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PublishRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { healthClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { grpcFrame, grpcStatusOf, http1Request, http2Request } from "../support/raw-http.js";
import { startServer, tempDir, type TestServer } from "../support/server.js";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tries `attempt` until it answers true: for a change the server makes on its own time (a slot freed once it has seen a close). */
async function until(attempt: () => Promise<boolean>): Promise<void> {
  while (!(await attempt())) await pause(50);
}

/** A raw TCP connection from `localAddress` that speaks HTTP/1.1 by hand and tells when the server closes it. */
class RawConnection {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private received = "";
  private waiters: (() => void)[] = [];

  constructor(port: number, localAddress = "127.0.0.1") {
    this.socket = net.connect({ port, host: "127.0.0.1", localAddress });
    this.socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString("latin1");
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => this.socket.on("close", () => resolve()));
  }

  /** Everything received so far. */
  text(): string {
    return this.received;
  }

  /** Resolves once the server has sent something, or has closed the connection. */
  async answered(): Promise<void> {
    while (this.received === "" && !this.socket.destroyed) {
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), this.closed]);
    }
  }

  /** Sends a GET and resolves with the whole answer's head (status line and headers), or "closed". */
  async get(path: string): Promise<string> {
    this.received = "";
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    while (!this.answerComplete()) {
      if (this.socket.destroyed) return "closed";
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), this.closed]);
    }
    return this.received.split("\r\n\r\n", 1)[0]!;
  }

  private answerComplete(): boolean {
    const end = this.received.indexOf("\r\n\r\n");
    if (end < 0) return false;
    const length = /content-length: (\d+)/i.exec(this.received.slice(0, end));
    return length === null || this.received.length >= end + 4 + Number(length[1]);
  }
}

/** The status line of an answer's head. */
const statusLine = (head: string) => head.split("\r\n", 1)[0];

/** A RawConnection once its TCP handshake is done: connections opened one after another this way reach the server in that order. */
async function openFrom(port: number, localAddress: string): Promise<RawConnection> {
  const connection = new RawConnection(port, localAddress);
  await once(connection.socket, "connect");
  return connection;
}

/** Attacker addresses, in turn: 127.0.0.2 to 127.0.0.9, so no address comes near its own limit. */
const attackerAddress = (i: number) => `127.0.0.${2 + (i % 8)}`;

/** Which of `connections` the server closes first, counting from `from`: the one it evicted. */
function firstClosed(connections: readonly { closed: Promise<void> }[], from: number): Promise<number> {
  return Promise.race(connections.slice(from).map((connection, i) => connection.closed.then(() => from + i)));
}

/** Sends GET /health on a session, which stays open, and resolves with the status (0 if the stream failed). */
function getHealth(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => {
    const stream = session.request({ ":method": "GET", ":path": "/health" });
    let status = 0;
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("error", () => undefined);
    stream.on("close", () => resolve(status));
    stream.resume();
  });
}

/** A self-signed certificate for 127.0.0.1, in files for the server, and the certificate itself for clients to trust. */
function selfSignedCert(): { cert: string; key: string; ca: Buffer } {
  const dir = tempDir("tally-limits-tls-");
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost"].concat([
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  );
  return { cert, key, ca: readFileSync(cert) };
}

interface TlsConnection {
  /** "handshake" once it is up, "closed" if the server closed it first. */
  outcome: "handshake" | "closed";
  socket: tls.TLSSocket;
  closed: Promise<void>;
}

/** A TLS connection from `localAddress` offering `alpn`, resolved once its handshake is done or it has been closed. */
function connectTls(port: number, ca: Buffer, localAddress: string, alpn = "h2"): Promise<TlsConnection> {
  return new Promise((resolve) => {
    const tcp = net.connect({ port, host: "127.0.0.1", localAddress });
    tcp.on("error", () => undefined);
    const socket = tls.connect({ socket: tcp, ca, ALPNProtocols: [alpn] });
    socket.on("error", () => undefined);
    // Reads and drops what the server sends (an HTTP/2 server's SETTINGS): a socket with unread data never sees the close behind it.
    socket.resume();
    const closed = new Promise<void>((resolveClosed) => socket.once("close", () => resolveClosed()));
    socket.once("secureConnect", () => resolve({ outcome: "handshake", socket, closed }));
    void closed.then(() => resolve({ outcome: "closed", socket, closed }));
  });
}

/** Resolves once the server has acknowledged a PING sent now: it has read, and handled, every frame sent before it. */
async function pingAcked(session: http2.ClientHttp2Session): Promise<void> {
  // A PING sent before the session is up is cancelled.
  if (session.connecting) await new Promise((resolve) => session.once("connect", resolve));
  await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
}

/** HTTP/2 frame types and flags used by the raw clients below. */
const frameType = { headers: 1, rstStream: 3, settings: 4, goaway: 7 } as const;
const endStreamAndHeaders = 0x5;
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** GET /health as an HPACK header block, from the static table only: :method GET, :scheme http, :path /health, :authority x. */
const getHealthBlock = Buffer.concat([Buffer.from([0x82, 0x86, 0x04, 7]), Buffer.from("/health"), Buffer.from([0x01, 1]), Buffer.from("x")]);

/** The GOAWAY error codes in a stream of HTTP/2 frames from the server. */
class FrameReader {
  readonly goaways: number[] = [];
  private buffer = Buffer.alloc(0);

  read(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3);
      if (this.buffer.length < 9 + length) return;
      if (this.buffer[3] === frameType.goaway) this.goaways.push(this.buffer.readUInt32BE(13));
      this.buffer = this.buffer.subarray(9 + length);
    }
  }
}

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");

interface GrpcHealthClient extends grpc.Client {
  Check(req: { service: string }, options: grpc.CallOptions, callback: grpc.requestCallback<{ status: string }>): grpc.ClientUnaryCall;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}

/** grpc-js's client of the standard health service, from the .proto alone. */
function grpcJsHealth(port: number): GrpcHealthClient {
  const definition = protoLoader.loadSync("grpc/health/v1/health.proto", { keepCase: true, enums: String, defaults: true, includeDirs: [protoDir] });
  const loaded = grpc.loadPackageDefinition(definition);
  const Health = (((loaded.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  return new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as GrpcHealthClient;
}

function grpcJsCheck(client: GrpcHealthClient): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check({ service: "" }, { deadline: Date.now() + 30_000 }, (err, res) => (err ? reject(err) : resolve(res!.status))),
  );
}

/** Runs `watch` to its first message and then to its end, answering the error it ended with. */
async function watchUntilEnd(updates: AsyncIterable<unknown>): Promise<ConnectError | undefined> {
  let first = true;
  try {
    for await (const _ of updates) first = false;
  } catch (err) {
    expect(first).toBe(false);
    return ConnectError.from(err);
  }
  return undefined;
}

/** Starts a health watch and resolves once its first message has arrived. */
async function openWatch(health: ReturnType<typeof healthClient>, signal: AbortSignal): Promise<AsyncIterator<unknown>> {
  const updates = health.watch({}, { signal })[Symbol.asyncIterator]();
  expect((await updates.next()).done).toBe(false);
  return updates;
}

/** A watch that is refused: the error its first read meets. */
async function refusedWatch(health: ReturnType<typeof healthClient>): Promise<ConnectError> {
  const updates = health.watch({})[Symbol.asyncIterator]();
  const outcome = await updates.next().then(
    () => new Error("the watch was served"),
    (err: unknown) => ConnectError.from(err),
  );
  if (!(outcome instanceof ConnectError)) throw outcome;
  return outcome;
}

describe("--max-connections-per-address", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-connections-per-address", "2"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes a connection from an address that has its maximum open, serves other addresses, and takes it again once one closes", async () => {
    const first = new RawConnection(server.port, "127.0.0.2");
    const second = new RawConnection(server.port, "127.0.0.2");
    expect(statusLine(await first.get("/health"))).toBe("HTTP/1.1 200 OK");
    expect(statusLine(await second.get("/health"))).toBe("HTTP/1.1 200 OK");

    const third = new RawConnection(server.port, "127.0.0.2");
    await third.closed;
    expect(third.text()).toBe("");
    // HTTP/2 from that address too: closed before any stream.
    const session = http2.connect(server.url, { localAddress: "127.0.0.2" } as http2.SecureClientSessionOptions);
    session.on("error", () => undefined);
    await new Promise((resolve) => session.once("close", resolve));

    const probe = new RawConnection(server.port, "127.0.0.1");
    expect(statusLine(await probe.get("/health"))).toBe("HTTP/1.1 200 OK");
    probe.socket.destroy();

    first.socket.destroy();
    await first.closed;
    await until(async () => {
      const again = new RawConnection(server.port, "127.0.0.2");
      const answer = await again.get("/health");
      again.socket.destroy();
      return statusLine(answer) === "HTTP/1.1 200 OK";
    });
    second.socket.destroy();
  });
});

describe("--max-connections-per-address with TLS", () => {
  let server: TestServer;
  let ca: Buffer;
  beforeAll(async () => {
    const files = selfSignedCert();
    ca = files.ca;
    server = await startServer({ args: ["--tls-cert", files.cert, "--tls-key", files.key, "--max-connections-per-address", "1"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes a TLS connection beyond the limit before its handshake, and serves other addresses", async () => {
    const first = await connectTls(server.port, ca, "127.0.0.2");
    expect(first.outcome).toBe("handshake");
    expect((await connectTls(server.port, ca, "127.0.0.2")).outcome).toBe("closed");
    const probe = await connectTls(server.port, ca, "127.0.0.1");
    expect(probe.outcome).toBe("handshake");
    probe.socket.destroy();
    first.socket.destroy();
  });
});

/**
 * Connections that hold a slot without ever sending a request, as a flood
 * from many addresses sends them. Each resolves once the server has answered
 * what it sent, where the server answers anything (an HTTP/2 session's
 * SETTINGS); half an HTTP/1.1 header gets no answer, and comes first in turn
 * so that the server has read it by the time the round trips of the kinds
 * opened after it are over.
 */
const unservedKinds: readonly ((connection: RawConnection) => Promise<void>)[] = [
  // Half an HTTP/1.1 header: no blank line ends it.
  async (connection) => {
    connection.socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  },
  // Nothing at all.
  async () => undefined,
  // The HTTP/2 preface alone.
  async (connection) => {
    connection.socket.write(preface);
    await connection.answered();
  },
  // An HTTP/2 session without a stream: the preface and SETTINGS.
  async (connection) => {
    connection.socket.write(Buffer.concat([preface, frame(frameType.settings, 0, 0, Buffer.alloc(0))]));
    await connection.answered();
  },
];

describe("--max-connections, full of connections that have sent no request", () => {
  const maxConnections = 20;
  let server: TestServer;
  beforeEach(async () => {
    // An idle timeout far above the 10 s silence timeout and the test: only eviction closes anything here.
    server = await startServer({ args: ["--max-connections", String(maxConnections), "--idle-timeout-ms", "120000"] });
  });
  afterEach(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("serves a well-behaved client at once, closing the silent connection that came first", async () => {
    const silent: RawConnection[] = [];
    try {
      for (let i = 0; i < maxConnections; i++) silent.push(await openFrom(server.port, attackerAddress(i)));
      // Closing its connection afterwards, so that the server is left with the flood only.
      const response = await fetch(`${server.url}/health`, { headers: { connection: "close" } });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      expect(await firstClosed(silent, 0)).toBe(0);
    } finally {
      for (const connection of silent) connection.socket.destroy();
    }
  });

  it("makes room for each newcomer by closing the connection that has waited longest without a request, whatever it sent, and refuses newcomers once every connection is served", async () => {
    const waiting: RawConnection[] = [];
    const served: { destroy(): void }[] = [];
    try {
      for (let i = 0; i < maxConnections; i++) {
        const connection = await openFrom(server.port, attackerAddress(i));
        waiting.push(connection);
        await unservedKinds[i % unservedKinds.length]!(connection);
      }
      // Well-behaved clients, HTTP/1.1 and HTTP/2 in turn, each kept open once served: the oldest waiting connection goes for each.
      for (let i = 0; i < maxConnections; i++) {
        if (i % 2 === 0) {
          const client = await openFrom(server.port, "127.0.0.1");
          served.push(client.socket);
          expect(statusLine(await client.get("/health"))).toBe("HTTP/1.1 200 OK");
        } else {
          const session = http2.connect(server.url);
          session.on("error", () => undefined);
          served.push(session);
          expect(await getHealth(session)).toBe(200);
        }
        expect(await firstClosed(waiting, i)).toBe(i);
      }

      // Every connection has had a request and is kept: nothing to make room with, so a newcomer is closed as it arrives, its request unanswered.
      expect(await (await openFrom(server.port, attackerAddress(0))).get("/health")).toBe("closed");
      await expect(fetch(`${server.url}/health`, { headers: { connection: "close" } })).rejects.toThrow();

      // The evicted gave their slots back at once: one served connection closing is enough to let a newcomer in.
      served.shift()!.destroy();
      await until(async () => {
        const again = new RawConnection(server.port, "127.0.0.1");
        const answer = await again.get("/health");
        again.socket.destroy();
        return statusLine(answer) === "HTTP/1.1 200 OK";
      });
    } finally {
      for (const connection of waiting) connection.socket.destroy();
      for (const connection of served) connection.destroy();
    }
  });
});

describe("--max-connections with --max-connections-per-address", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-connections", "20", "--max-connections-per-address", "10", "--idle-timeout-ms", "120000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes a newcomer over its address's limit without closing anyone else's connection, and counts each connection until it closes", async () => {
    const connections: RawConnection[] = [];
    try {
      for (let i = 0; i < 20; i++) connections.push(await openFrom(server.port, i < 10 ? "127.0.0.2" : "127.0.0.3"));
      // The server is full of silent connections, but this newcomer's own address has its maximum: it is refused, and no one makes room for it.
      expect(await (await openFrom(server.port, "127.0.0.2")).get("/health")).toBe("closed");
      for (const connection of connections) expect(statusLine(await connection.get("/health"))).toBe("HTTP/1.1 200 OK");

      // All twenty served now: a newcomer from any address is refused.
      expect(await (await openFrom(server.port, "127.0.0.4")).get("/health")).toBe("closed");

      // One closing frees its slot and its address's.
      connections.shift()!.socket.destroy();
      await until(async () => {
        const again = new RawConnection(server.port, "127.0.0.2");
        const answer = await again.get("/health");
        again.socket.destroy();
        return statusLine(answer) === "HTTP/1.1 200 OK";
      });
    } finally {
      for (const connection of connections) connection.socket.destroy();
    }
  });
});

describe("--max-connections with TLS", () => {
  const maxConnections = 9;
  let server: TestServer;
  let ca: Buffer;
  beforeAll(async () => {
    const files = selfSignedCert();
    ca = files.ca;
    server = await startServer({ args: ["--tls-cert", files.cert, "--tls-key", files.key, "--max-connections", String(maxConnections), "--idle-timeout-ms", "120000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("makes room for a TLS client by closing the oldest connection without a request, before or after its handshake, and refuses newcomers once every connection is served", async () => {
    const waiting: { closed: Promise<void>; destroy(): void }[] = [];
    const served: http2.ClientHttp2Session[] = [];
    try {
      for (let i = 0; i < maxConnections; i++) {
        if (i % 3 === 0) {
          // No ClientHello: a handshake never started.
          const silent = await openFrom(server.port, attackerAddress(i));
          waiting.push({ closed: silent.closed, destroy: () => silent.socket.destroy() });
        } else {
          // A handshake done, then HTTP/2 without its preface, or half an HTTP/1.1 header.
          const connection = await connectTls(server.port, ca, attackerAddress(i), i % 3 === 1 ? "h2" : "http/1.1");
          expect(connection.outcome).toBe("handshake");
          if (i % 3 === 2) connection.socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
          waiting.push({ closed: connection.closed, destroy: () => connection.socket.destroy() });
        }
      }
      for (let i = 0; i < maxConnections; i++) {
        const session = http2.connect(`https://127.0.0.1:${server.port}`, { ca });
        session.on("error", () => undefined);
        served.push(session);
        expect(await getHealth(session)).toBe(200);
        expect(await firstClosed(waiting, i)).toBe(i);
      }
      // Every connection served: a newcomer is closed before its handshake.
      expect((await connectTls(server.port, ca, attackerAddress(0))).outcome).toBe("closed");
    } finally {
      for (const connection of waiting) connection.destroy();
      for (const session of served) session.destroy();
    }
  });
});

describe("--max-streams", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-streams", "3"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  /** Opens a PublishStream that sends nothing: it holds its stream until closed. */
  function holdStream(session: http2.ClientHttp2Session): http2.ClientHttp2Stream {
    const stream = session.request(
      { ":method": "POST", ":path": "/aggregator.v1.AggregatorService/PublishStream", "content-type": "application/grpc", te: "trailers" },
      { endStream: false },
    );
    stream.on("error", () => undefined);
    return stream;
  }

  it("answers a call beyond the total with unavailable and a retry hint, over HTTP/2 and HTTP/1.1, and serves again once calls end", async () => {
    const holder = http2.connect(server.url);
    holder.on("error", () => undefined);
    try {
      const held = [holdStream(holder), holdStream(holder), holdStream(holder)];
      await pingAcked(holder);

      for (const refused of [
        await http2Request(server.url, { method: "GET", path: "/health" }),
        await http1Request(server.url, { method: "GET", path: "/health" }),
      ]) {
        expect(refused.status).toBe(503);
        expect(refused.headers["retry-after"]).toBe("1");
        expect(JSON.parse(refused.body.toString())).toMatchObject({ code: "unavailable" });
      }
      // A gRPC call gets its status, RetryInfo included, in the gRPC form.
      const grpcRefused = await http2Request(server.url, {
        path: "/grpc.health.v1.Health/Check",
        headers: { "content-type": "application/grpc", te: "trailers" },
        body: grpcFrame(new Uint8Array()),
      });
      expect(grpcStatusOf(grpcRefused)?.code).toBe(Code.Unavailable);
      expect(grpcRefused.headers["retry-after"]).toBe("1");
      expect(grpcRefused.headers["grpc-status-details-bin"]).toBeDefined();
      const connect = healthClient(server.url);
      await expect(connect.check({})).rejects.toMatchObject({ code: Code.Unavailable });

      held[0]!.close(http2.constants.NGHTTP2_CANCEL);
      await pingAcked(holder);
      expect((await http2Request(server.url, { method: "GET", path: "/health" })).status).toBe(200);
      expect((await connect.check({})).status).toBeGreaterThan(0);
    } finally {
      holder.destroy();
    }
  });

  it("counts HTTP/1.1 requests while they are open", async () => {
    // Requests whose bodies never come: each holds its place until its connection closes.
    const holders = Array.from({ length: 3 }, () => {
      const connection = new RawConnection(server.port);
      connection.socket.write("POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
      return connection;
    });
    await until(async () => (await http2Request(server.url, { method: "GET", path: "/health" })).status === 503);
    for (const connection of holders) connection.socket.destroy();
    await until(async () => (await http2Request(server.url, { method: "GET", path: "/health" })).status === 200);
  });
});

describe("long-lived calls (health Watch)", () => {
  let server: TestServer;
  beforeAll(async () => {
    // A quarter of 8 streams: two watches in total.
    server = await startServer({ args: ["--max-streams", "8"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("refuses a watch beyond the total share of streams with unavailable, while calls are still served", async () => {
    const stop = new AbortController();
    try {
      await openWatch(healthClient(server.url), stop.signal);
      await openWatch(healthClient(server.url), stop.signal);
      const third = healthClient(server.url);
      expect((await refusedWatch(third)).code).toBe(Code.Unavailable);
      expect((await third.check({})).status).toBeGreaterThan(0);
    } finally {
      stop.abort();
    }
  });
});

describe("long-lived calls per connection", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("refuses an 11th watch on one connection with resource_exhausted, and serves a watch on another", async () => {
    const stop = new AbortController();
    // One listener per watch.
    setMaxListeners(20, stop.signal);
    try {
      const health = healthClient(server.url);
      for (let i = 0; i < 10; i++) await openWatch(health, stop.signal);
      const refused = await refusedWatch(health);
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.rawMessage).toContain("at most 10");
      await openWatch(healthClient(server.url), stop.signal);
    } finally {
      stop.abort();
    }
  });
});

describe("--max-connection-age-ms", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-connection-age-ms", "500", "--max-connection-age-grace-ms", "3000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("ends a health Watch with unavailable when its connection comes of age", async () => {
    const err = await watchUntilEnd(healthClient(server.url).watch({}));
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.rawMessage).toContain("maximum age");
  });

  it("keeps a grpc-js client working across GOAWAY, and its Watch ends with UNAVAILABLE", async () => {
    const client = grpcJsHealth(server.port);
    try {
      const watch = client.Watch({ service: "" });
      const watchEnded = new Promise<grpc.ServiceError>((resolve) => watch.once("error", resolve));
      watch.on("data", () => undefined);
      const channel = client.getChannel();
      for (let age = 0; age < 2; age++) {
        expect(await grpcJsCheck(client)).toBe("SERVING");
        // GOAWAY takes the channel out of READY; the next call reconnects.
        const state = channel.getConnectivityState(false);
        expect(state).toBe(grpc.connectivityState.READY);
        await new Promise<void>((resolve, reject) =>
          channel.watchConnectivityState(state, Date.now() + 30_000, (err) => (err ? reject(err) : resolve())),
        );
      }
      expect(await grpcJsCheck(client)).toBe("SERVING");
      expect((await watchEnded).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it("lets a unary call in flight at GOAWAY finish", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      const goaway = new Promise((resolve) => session.once("goaway", resolve));
      const message = grpcFrame(toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [makeEvent({ topic: "limits.age" })] })));
      const stream = session.request({ ":method": "POST", ":path": "/aggregator.v1.AggregatorService/Publish", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      const headers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("response", resolve));
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("trailers", resolve));
      stream.resume();
      // Half of the message now, the rest after GOAWAY.
      stream.write(message.subarray(0, 10));
      await goaway;
      stream.end(message.subarray(10));
      expect((await headers)[":status"]).toBe(200);
      expect((await trailers)["grpc-status"]).toBe("0");
    } finally {
      session.destroy();
    }
  });

  it("answers an aged HTTP/1.1 connection with Connection: close, then closes it", async () => {
    const connection = new RawConnection(server.port);
    let head = "";
    await until(async () => {
      head = await connection.get("/health");
      return /\r\nconnection: close/i.test(head);
    });
    expect(statusLine(head)).toBe("HTTP/1.1 200 OK");
    await connection.closed;
  });
});

describe("--max-connection-age-grace-ms", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--max-connection-age-ms", "500", "--max-connection-age-grace-ms", "200"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("cuts a call still open after the grace, with its connection", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    const goaway = new Promise((resolve) => session.once("goaway", resolve));
    const closed = new Promise((resolve) => session.once("close", resolve));
    // A PublishStream that never ends.
    const stream = session.request(
      { ":method": "POST", ":path": "/aggregator.v1.AggregatorService/PublishStream", "content-type": "application/grpc", te: "trailers" },
      { endStream: false },
    );
    stream.on("error", () => undefined);
    await goaway;
    await closed;
    expect(stream.closed).toBe(true);
  });

  it("cuts an idle HTTP/1.1 keep-alive connection after the grace", async () => {
    const connection = new RawConnection(server.port);
    expect(statusLine(await connection.get("/health"))).toBe("HTTP/1.1 200 OK");
    await connection.closed;
  });
});

describe("silent connections", () => {
  let server: TestServer;
  beforeAll(async () => {
    // Far above the 10 s wait for a new connection's first bytes.
    server = await startServer({ args: ["--idle-timeout-ms", "120000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes a connection that sends nothing, and one that sends the HTTP/2 preface but no SETTINGS", async () => {
    const silent = new RawConnection(server.port);
    const prefaceOnly = new RawConnection(server.port);
    prefaceOnly.socket.write(preface);
    await Promise.all([silent.closed, prefaceOnly.closed]);
  });
});

describe("HTTP/2 rapid reset", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("closes the session of a client that opens and resets streams in a tight loop, while another client is served", async () => {
    const attacker = net.connect({ port: server.port, host: "127.0.0.1", localAddress: "127.0.0.3" });
    attacker.on("error", () => undefined);
    const frames = new FrameReader();
    attacker.on("data", (chunk: Buffer) => frames.read(chunk));
    const closed = new Promise<void>((resolve) => attacker.once("close", () => resolve()));
    await new Promise((resolve) => attacker.once("connect", resolve));

    const probes: number[] = [];
    let attacking = true;
    const probing = (async () => {
      while (attacking) probes.push((await http1Request(server.url, { method: "GET", path: "/health" })).status);
    })();

    attacker.write(Buffer.concat([preface, frame(frameType.settings, 0, 0, Buffer.alloc(0))]));
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
    const maxStreams = 100_000;
    let sent = 0;
    while (sent < maxStreams && !attacker.destroyed) {
      const batch: Buffer[] = [];
      for (let i = 0; i < 100; i++, sent++) {
        const id = 2 * sent + 1;
        batch.push(frame(frameType.headers, endStreamAndHeaders, id, getHealthBlock), frame(frameType.rstStream, 0, id, cancel));
      }
      if (!attacker.write(Buffer.concat(batch))) await Promise.race([new Promise((resolve) => attacker.once("drain", resolve)), closed]);
      else await new Promise((resolve) => setImmediate(resolve));
    }
    // Node alone would leave this connection open until the idle timeout (65 s), past the test's time.
    await closed;
    attacking = false;
    await probing;

    // Its GOAWAY may be lost with the connection's last bytes; when it arrives it says why.
    for (const code of frames.goaways) expect([http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, http2.constants.NGHTTP2_INTERNAL_ERROR]).toContain(code);
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((status) => status === 200)).toBe(true);
    expect((await http2Request(server.url, { method: "GET", path: "/health" })).status).toBe(200);
    expect(server.logs.filter((line) => line.includes('"level":50'))).toEqual([]);
  });
});
