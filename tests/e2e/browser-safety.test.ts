/**
 * Web pages against a server on loopback with authentication off (the
 * default): what a page can send without asking (a cross-site "simple"
 * request) stores nothing, what DNS rebinding would read is refused, and the
 * clients that are not browsers (curl, scripts, gRPC) and the server's own
 * pages (same origin) work as before. Real server, real fetch, node:http,
 * node:http2, curl and grpc-js.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "../support/clients.js";
import { jsonEvent, makeEvent } from "../support/events.js";
import { grpcFrame, grpcStatusOf, http1Request, http2Request } from "../support/raw-http.js";
import { startServer, type TestServer } from "../support/server.js";

let server: TestServer;
/** The server's own origin, as a page it served would send it. */
let ownOrigin: string;

beforeAll(async () => {
  server = await startServer();
  ownOrigin = server.url;
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** How many events of a topic are stored. */
async function storedCount(topic: string): Promise<number> {
  return (await grpcClient(server.url).events({ topic, limit: 1000 })).events.length;
}

/** A POST of one event to /publish with fetch, as a page would send it (Node's fetch lets us set Origin and Sec-Fetch-Site). */
async function publishViaFetch(topic: string, headers: Record<string, string>) {
  const res = await fetch(`${server.url}/publish`, { method: "POST", headers, body: JSON.stringify(jsonEvent({ topic })) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("a page of another site", () => {
  it("cannot publish with a text/plain POST (no preflight needed): 403, nothing stored", async () => {
    const topic = `cross-site.${randomUUID()}`;
    // What fetch(url, {method: "POST", mode: "no-cors", body: "..."}) from http://evil.example sends.
    const res = await publishViaFetch(topic, { origin: "http://evil.example", "sec-fetch-site": "cross-site", "content-type": "text/plain;charset=UTF-8" });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ code: "permission_denied", message: expect.stringContaining("a cross-site") });
    expect(await storedCount(topic)).toBe(0);
  });

  it("cannot publish with a form, nor from another port of localhost, nor with Origin: null", async () => {
    const topic = `cross-site.${randomUUID()}`;
    for (const origin of ["http://evil.example", `http://127.0.0.1:${server.port + 1}`, "null"]) {
      const res = await publishViaFetch(topic, { origin, "content-type": "application/x-www-form-urlencoded" });
      expect(res.status, origin).toBe(403);
      expect(res.body.message).toContain(`origin "${origin}" may not send "POST" requests here: this server's origin is "${ownOrigin}"`);
    }
    // A browser that sends Sec-Fetch-Site but (somehow) no Origin.
    expect((await publishViaFetch(topic, { "sec-fetch-site": "same-site", "content-type": "text/plain" })).status).toBe(403);
    expect(await storedCount(topic)).toBe(0);
  });

  it("cannot publish through the RPC paths either: refused in the Connect form, nothing stored", async () => {
    const topic = `cross-site.${randomUUID()}`;
    const res = await fetch(`${server.url}/aggregator.v1.AggregatorService/Publish`, {
      method: "POST",
      headers: { origin: "http://evil.example", "content-type": "text/plain" },
      body: JSON.stringify({ events: [jsonEvent({ topic })] }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ code: "permission_denied", message: expect.stringContaining('origin "http://evil.example"') });
    expect(await storedCount(topic)).toBe(0);
  });

  it("is logged once per refusal, naming the reason", async () => {
    await publishViaFetch(`cross-site.${randomUUID()}`, { origin: "http://logged.example", "content-type": "text/plain" });
    // The server writes its log asynchronously.
    const lines = () => server.logs.filter((line) => line.includes("logged.example"));
    await vi.waitFor(() => expect(lines()).toHaveLength(1));
    expect(JSON.parse(lines()[0]!)).toMatchObject({ msg: "request refused", code: "permission_denied", operation: '"POST /publish"' });
  });
});

describe("every RPC path", () => {
  const paths = [...AggregatorService.methods, ...Health.methods].map((m) => `/${m.parent.typeName}/${m.name}`);

  it("refuses text/plain and form content (415) even from clients that are not browsers, storing nothing", async () => {
    const topic = `rpc-text.${randomUUID()}`;
    const body = JSON.stringify({ events: [jsonEvent({ topic })] });
    for (const path of paths) {
      for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
        const res = await http1Request(server.url, { path, headers: { "content-type": contentType }, body });
        expect(res.status, `${path} ${contentType}`).toBe(415);
        expect(JSON.parse(res.body.toString())).toMatchObject({ code: "invalid_argument" });
      }
    }
    expect(await storedCount(topic)).toBe(0);
  });

  it("publishes nothing over Connect GET (an <img> or a link can send GET): Publish and PublishStream answer 405", async () => {
    const topic = `rpc-get.${randomUUID()}`;
    const message = encodeURIComponent(JSON.stringify({ events: [jsonEvent({ topic })] }));
    for (const method of ["Publish", "PublishStream"]) {
      const res = await http1Request(server.url, { method: "GET", path: `/aggregator.v1.AggregatorService/${method}?encoding=json&message=${message}` });
      expect(res.status, method).toBe(405);
    }
    expect(await storedCount(topic)).toBe(0);
    // The reads that have no side effects still answer over GET.
    const events = await http1Request(server.url, { method: "GET", path: `/aggregator.v1.AggregatorService/Events?encoding=json&message=${encodeURIComponent("{}")}` });
    expect(events.status).toBe(200);
  });
});

describe("DNS rebinding: a request addressed to another name", () => {
  const evil = () => `rebound.example:${server.port}`;

  it("is refused over HTTP/1.1 with 421 and a REST error body", async () => {
    for (const path of ["/events", "/stats", "/health"]) {
      const res = await http1Request(server.url, { method: "GET", path, headers: { host: evil() } });
      expect(res.status, path).toBe(421);
      expect(JSON.parse(res.body.toString())).toEqual({ code: "permission_denied", message: expect.stringContaining(`host "${evil()}" is not a loopback name`) });
    }
  });

  it("is refused over HTTP/2 by :authority, in the Connect form on RPC paths", async () => {
    const rest = await http2Request(server.url, { method: "GET", path: "/events", headers: { ":authority": evil() } });
    expect(rest.status).toBe(421);
    const connectGet = await http2Request(server.url, { method: "GET", path: `/aggregator.v1.AggregatorService/Stats?encoding=json&message=${encodeURIComponent("{}")}`, headers: { ":authority": evil() } });
    expect(connectGet.status).toBe(421);
    expect(JSON.parse(connectGet.body.toString())).toMatchObject({ code: "permission_denied" });
  });

  it("is refused to gRPC clients as PERMISSION_DENIED", async () => {
    const raw = await http2Request(server.url, {
      path: "/aggregator.v1.AggregatorService/Stats",
      headers: { ":authority": evil(), "content-type": "application/grpc", te: "trailers" },
      body: grpcFrame(new Uint8Array()),
    });
    expect(raw.status).toBe(200);
    expect(grpcStatusOf(raw)).toMatchObject({ code: Code.PermissionDenied, message: expect.stringContaining("is not a loopback name") });
    const client = grpcJsClient({ "grpc.default_authority": evil() });
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.Stats({}, (e: grpc.ServiceError | null) => resolve(e)));
      expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it("a request with no Host at all (HTTP/1.0) is served", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, "127.0.0.1", () => socket.end("GET /health HTTP/1.0\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("loopback names and addresses on any port are served", async () => {
    for (const host of [`localhost:${server.port}`, `app.localhost:${server.port}`, "127.0.0.2:1", "[::1]:8080"]) {
      expect((await http1Request(server.url, { method: "GET", path: "/health", headers: { host } })).status, host).toBe(200);
    }
  });
});

describe("what is not a page of another site still works", () => {
  it("the server's own pages: fetch with its Origin and Sec-Fetch-Site same-origin, sending JSON", async () => {
    const topic = `same-origin.${randomUUID()}`;
    const res = await publishViaFetch(topic, { origin: ownOrigin, "sec-fetch-site": "same-origin", "content-type": "application/json" });
    expect(res).toMatchObject({ status: 200, body: { accepted: 1 } });
    // The same page, reached as localhost.
    const viaLocalhost = await http1Request(server.url, {
      path: "/publish",
      headers: { host: `localhost:${server.port}`, origin: `http://localhost:${server.port}`, "content-type": "application/json" },
      body: JSON.stringify(jsonEvent({ topic })),
    });
    expect(viaLocalhost.status).toBe(200);
    // A Connect client in the page (connect-web sends its Origin too).
    const withOrigin: Interceptor = (next) => (req) => {
      req.header.set("origin", ownOrigin);
      return next(req);
    };
    const page = createClient(AggregatorService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [withOrigin] }));
    expect((await page.publish({ events: [makeEvent({ topic })] })).accepted).toBe(1);
    expect(await storedCount(topic)).toBe(3);
  });

  it("but even the server's own pages may not send text/plain: 415", async () => {
    const topic = `same-origin.${randomUUID()}`;
    const res = await publishViaFetch(topic, { origin: ownOrigin, "content-type": "text/plain;charset=UTF-8" });
    expect(res.status).toBe(415);
    expect(res.body).toEqual({ code: "invalid_argument", message: expect.stringContaining("send application/json") });
    expect(await storedCount(topic)).toBe(0);
  });

  it("curl, with its default form content type or with application/json", () => {
    const topic = `curl.${randomUUID()}`;
    const curl = (...args: string[]) => spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args], { encoding: "utf8", timeout: 20_000 });
    const probe = curl("--version");
    if (probe.error !== undefined) return; // no curl here: the node:http requests below stand in for it
    expect(curl("-d", JSON.stringify(jsonEvent({ topic })), `${server.url}/publish`).stdout).toBe("200");
    expect(curl("-H", "Content-Type: application/json", "-d", JSON.stringify(jsonEvent({ topic })), `http://localhost:${server.port}/publish`).stdout).toBe("200");
  });

  it("scripts: no content type, form content type, or text/plain from Node's fetch (which adds Sec-Fetch-Mode: cors)", async () => {
    const topic = `script.${randomUUID()}`;
    for (const headers of [{}, { "content-type": "application/x-www-form-urlencoded" }] as Record<string, string>[]) {
      expect((await http1Request(server.url, { path: "/publish", headers, body: JSON.stringify(jsonEvent({ topic })) })).status).toBe(200);
    }
    const res = await fetch(`${server.url}/publish`, { method: "POST", body: JSON.stringify(jsonEvent({ topic })) });
    expect(res.status).toBe(200);
    expect(await storedCount(topic)).toBe(3);
  });

  it("gRPC: connect-node's gRPC transport and grpc-js publish as before", async () => {
    const topic = `grpc.${randomUUID()}`;
    expect((await grpcClient(server.url).publish({ events: [makeEvent({ topic })] })).accepted).toBe(1);
    const client = grpcJsClient();
    try {
      const event = { topic, event_id: randomUUID(), timestamp: { seconds: 1_761_300_000, nanos: 0 }, source: "grpc-js", payload: { fields: {} } };
      const answer = await new Promise<{ accepted: number }>((resolve, reject) =>
        client.Publish({ events: [event] }, (err: grpc.ServiceError | null, res: { accepted: number }) => (err ? reject(err) : resolve(res))),
      );
      expect(answer.accepted).toBe(1);
    } finally {
      client.close();
    }
    expect(await storedCount(topic)).toBe(2);
  });

  it("with a rebinding Host refused, connect-node still reads the refusal as permission_denied", async () => {
    // connect-node sets Host from its base URL; a page's rebound name is what it would carry instead.
    const rebound: Interceptor = (next) => (req) => {
      req.header.set("host", `rebound.example:${server.port}`);
      return next(req);
    };
    const client = createClient(AggregatorService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [rebound] }));
    const err = await client.stats({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.PermissionDenied);
  });
});

/** The two calls of grpc-js's AggregatorService client these tests make. */
interface GrpcJsAggregator extends grpc.Client {
  Stats(request: object, callback: (err: grpc.ServiceError | null) => void): void;
  Publish(request: object, callback: (err: grpc.ServiceError | null, res: { accepted: number }) => void): void;
}

/** A grpc-js client of AggregatorService, loaded from proto/ only. */
function grpcJsClient(options: grpc.ChannelOptions = {}): GrpcJsAggregator {
  const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");
  const definition = protoLoader.loadSync("aggregator/v1/aggregator.proto", { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [protoDir] });
  const service = ((grpc.loadPackageDefinition(definition).aggregator as grpc.GrpcObject).v1 as grpc.GrpcObject).AggregatorService as grpc.ServiceClientConstructor;
  return new service(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), options) as unknown as GrpcJsAggregator;
}
