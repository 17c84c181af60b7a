/**
 * Authentication and authorization against a real server started with
 * --auth-tokens, driven by connect-node (gRPC and Connect JSON), grpc-js and
 * fetch on the REST routes.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { healthClient } from "../support/clients.js";
import { jsonEvent, makeEvent } from "../support/events.js";
import { serverEntry, startServer, tempDir, type TestServer } from "../support/server.js";
import { bearer, secret, writeTokenFile } from "../support/tokens.js";
import { refusal } from "../support/promises.js";

const tokens = { admin: secret(), ingest: secret(), reader: secret(), ordersReader: secret() };
/** Sent by tests but not in the file: must not be logged either. */
const wrongToken = secret();

let server: TestServer;

beforeAll(async () => {
  const file = writeTokenFile([
      { name: "admin", token: tokens.admin, roles: ["publish", "read"] },
      { name: "ingest", token: tokens.ingest, roles: ["publish"], topics: ["orders."] },
      { name: "reader", token: tokens.reader, roles: ["read"] },
      { name: "orders-reader", token: tokens.ordersReader, roles: ["read"], topics: ["orders."] },
    ]);
  // trace: the most the server ever logs, so the token check below covers every log line it can write.
  server = await startServer({ args: ["--auth-tokens", file, "--log-level", "trace"] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function grpcAs(token?: string): Client<typeof AggregatorService> {
  return createClient(AggregatorService, createGrpcTransport({ baseUrl: server.url, interceptors: token === undefined ? [] : [bearer(token)] }));
}

function connectJsonAs(token: string): Client<typeof AggregatorService> {
  return createClient(AggregatorService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [bearer(token)] }));
}

async function rest(method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** How many events of a topic are stored, as the admin sees them. */
async function storedCount(topic: string): Promise<number> {
  return (await grpcAs(tokens.admin).events({ topic, limit: 1000 })).events.length;
}

describe("without a valid token", () => {
  it("REST answers 401 with a Bearer challenge, and GET /health stays open", async () => {
    const missing = await rest("POST", "/publish", undefined, jsonEvent({ topic: "orders.none" }));
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="tally"');
    expect(missing.body).toMatchObject({ code: "unauthenticated", message: expect.stringContaining("Authorization: Bearer") });
    const wrong = await rest("GET", "/stats", wrongToken);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="tally", error="invalid_token"');
    expect((await rest("GET", "/events")).status).toBe(401);
    const health = await rest("GET", "/health");
    expect(health).toMatchObject({ status: 200, body: { status: "healthy" } });
  });

  it("gRPC answers unauthenticated, and grpc.health.v1 stays open", async () => {
    expect((await refusal(grpcAs().publish({ events: [makeEvent({ topic: "orders.none" })] }))).code).toBe(Code.Unauthenticated);
    expect((await refusal(grpcAs(wrongToken).stats({}))).code).toBe(Code.Unauthenticated);
    expect((await refusal(grpcAs().publishStream((async function* () { yield { events: [makeEvent()] }; })()))).code).toBe(Code.Unauthenticated);
    expect((await healthClient(server.url).check({})).status).toBe(ServingStatus.SERVING);
  });
});

describe("roles", () => {
  it("a read token cannot publish: permission_denied on gRPC, 403 on REST, nothing stored", async () => {
    const topic = `orders.read-only.${randomUUID()}`;
    const rpc = await refusal(grpcAs(tokens.reader).publish({ events: [makeEvent({ topic })] }));
    expect(rpc.code).toBe(Code.PermissionDenied);
    expect(rpc.rawMessage).toBe('token "reader" lacks the "publish" role that Publish needs');
    const viaRest = await rest("POST", "/publish", tokens.reader, jsonEvent({ topic }));
    expect(viaRest.status).toBe(403);
    expect(viaRest.body.code).toBe("permission_denied");
    expect(await storedCount(topic)).toBe(0);
    // And it can read.
    expect((await grpcAs(tokens.reader).stats({})).received).toBeGreaterThanOrEqual(0n);
  });

  it("a publish-only token cannot read", async () => {
    expect((await refusal(grpcAs(tokens.ingest).events({ topic: "orders.x" }))).code).toBe(Code.PermissionDenied);
    expect((await rest("GET", "/events?topic=orders.x", tokens.ingest)).status).toBe(403);
  });
});

describe("topic prefixes", () => {
  it("a token limited to orders. may publish there, over gRPC, Connect JSON and REST", async () => {
    const topic = `orders.${randomUUID()}`;
    expect((await grpcAs(tokens.ingest).publish({ events: [makeEvent({ topic })] })).accepted).toBe(1);
    expect((await connectJsonAs(tokens.ingest).publish({ events: [makeEvent({ topic })] })).accepted).toBe(1);
    expect((await rest("POST", "/publish", tokens.ingest, [jsonEvent({ topic })])).body.accepted).toBe(1);
    expect(await storedCount(topic)).toBe(3);
  });

  it("a token limited to orders. cannot publish to billing: the whole request is refused, naming the index", async () => {
    const topic = `orders.${randomUUID()}`;
    const rpc = await refusal(grpcAs(tokens.ingest).publish({ events: [makeEvent({ topic }), makeEvent({ topic: "billing" })] }));
    expect(rpc.code).toBe(Code.PermissionDenied);
    expect(rpc.rawMessage).toBe(
      'token "ingest" is limited to topics starting with "orders."; request refused, none of its events stored (1 event outside): events[1].topic "billing"',
    );
    const viaRest = await rest("POST", "/publish", tokens.ingest, { events: [jsonEvent({ topic }), jsonEvent({ topic }), jsonEvent({ topic: "billing" })] });
    expect(viaRest.status).toBe(403);
    expect(viaRest.body).toMatchObject({ code: "permission_denied", message: expect.stringContaining('events[2].topic "billing"') });
    expect(await storedCount(topic)).toBe(0);
    expect(await storedCount("billing")).toBe(0);
  });

  it("on PublishStream, the first message with a topic outside is refused; earlier messages stay committed", async () => {
    const topic = `orders.${randomUUID()}`;
    const err = await refusal(
      grpcAs(tokens.ingest).publishStream(
        (async function* () {
          yield { events: [makeEvent({ topic }), makeEvent({ topic })] };
          yield { events: [makeEvent({ topic }), makeEvent({ topic: "billing.eu" })] };
          yield { events: [makeEvent({ topic })] };
        })(),
      ),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toContain('stream message 1 refused, none of its events stored (1 event outside): messages[1].events[1].topic "billing.eu"');
    expect(await storedCount(topic)).toBe(2);
  });

  it("a read token limited to orders. must filter on such a topic, and cannot read Stats", async () => {
    const topic = `orders.${randomUUID()}`;
    await grpcAs(tokens.ingest).publish({ events: [makeEvent({ topic })] });
    const limited = grpcAs(tokens.ordersReader);
    expect((await limited.events({ topic })).events).toHaveLength(1);
    const unfiltered = await refusal(limited.events({}));
    expect(unfiltered.code).toBe(Code.PermissionDenied);
    expect(unfiltered.rawMessage).toMatch(/Events must name one of those topics in its topic filter/);
    expect((await refusal(limited.events({ topic: "billing" }))).code).toBe(Code.PermissionDenied);
    expect((await refusal(limited.stats({}))).code).toBe(Code.PermissionDenied);
    expect((await rest("GET", `/events?topic=${topic}`, tokens.ordersReader)).body.count).toBe(1);
    expect((await rest("GET", "/events", tokens.ordersReader)).status).toBe(403);
    expect((await rest("GET", "/stats", tokens.ordersReader)).status).toBe(403);
    expect((await rest("GET", "/stats", tokens.reader)).status).toBe(200);
  });
});

describe("a refusal of a huge value", () => {
  /** A topic of 1 MiB outside every prefix of the limited tokens. */
  const hugeTopic = `billing.${"x".repeat(1 << 20)}`;

  it("quotes a short prefix of it: a 403 body under 1 KiB over REST, PERMISSION_DENIED with a short message over grpc-js, short log lines", async () => {
    const viaRest = await fetch(`${server.url}/publish`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.ingest}` },
      body: JSON.stringify(jsonEvent({ topic: hugeTopic })),
    });
    expect(viaRest.status).toBe(403);
    const body = await viaRest.text();
    expect(body.length).toBeLessThan(1024);
    expect(JSON.parse(body)).toMatchObject({ code: "permission_denied", message: expect.stringContaining(`events[0].topic "billing.xxx`) });
    expect(body).toContain(`… (${hugeTopic.length} characters)`);

    const client = grpcJsClient();
    try {
      const call = (method: "Publish" | "Events", request: object, token: string) =>
        new Promise<grpc.ServiceError | null>((resolve) => {
          const metadata = new grpc.Metadata();
          metadata.set("authorization", `Bearer ${token}`);
          (client as unknown as Record<string, Function>)[method]!.call(client, request, metadata, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null) => resolve(err));
        });
      const event = { topic: hugeTopic, event_id: randomUUID(), timestamp: { seconds: 1_761_300_000, nanos: 0 }, source: "test", payload: { fields: {} } };
      const published = await call("Publish", { events: [event] }, tokens.ingest);
      expect(published?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(published!.details.length).toBeLessThan(1024);
      const read = await call("Events", { topic: hugeTopic, limit: 1 }, tokens.ordersReader);
      expect(read?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(read!.details.length).toBeLessThan(1024);
    } finally {
      client.close();
    }
    expect(await storedCount(hugeTopic)).toBe(0);
    // Each refusal is logged once, and no log line repeats the topic.
    await vi.waitFor(() => expect(server.logs.filter((line) => line.includes(`(${hugeTopic.length} characters)`)).length).toBeGreaterThanOrEqual(3));
    for (const line of server.logs) expect(line.length).toBeLessThan(2048);
  });
});

describe("grpc-js", () => {
  it("carries the token as authorization metadata, and is refused without it", async () => {
    const client = grpcJsClient();
    const stats = (metadata: grpc.Metadata) =>
      new Promise<{ code: number; body?: unknown }>((resolve) => {
        (client as unknown as Record<string, Function>).Stats!.call(client, {}, metadata, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: unknown) =>
          resolve(err ? { code: err.code } : { code: 0, body: res }),
        );
      });
    try {
      expect((await stats(new grpc.Metadata())).code).toBe(grpc.status.UNAUTHENTICATED);
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${tokens.reader}`);
      expect(await stats(metadata)).toMatchObject({ code: 0, body: { received: expect.any(String) } });
      const publishOnly = new grpc.Metadata();
      publishOnly.set("authorization", `Bearer ${tokens.ingest}`);
      expect((await stats(publishOnly)).code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });
});

/** A grpc-js client of AggregatorService, loaded from proto/ only. */
function grpcJsClient(): grpc.Client {
  const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");
  const definition = protoLoader.loadSync("aggregator/v1/aggregator.proto", { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [protoDir] });
  const aggregatorV1 = ((grpc.loadPackageDefinition(definition).aggregator as grpc.GrpcObject).v1 as grpc.GrpcObject).AggregatorService as grpc.ServiceClientConstructor;
  return new aggregatorV1(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
}

describe("logs", () => {
  it("name the token of each refusal and never contain a token", async () => {
    // Make sure every kind of request has been seen, whatever order the tests ran in.
    await refusal(grpcAs(wrongToken).publish({ events: [makeEvent()] }));
    await rest("POST", "/publish", tokens.ingest, jsonEvent({ topic: "billing" }));
    await grpcAs(tokens.admin).stats({});
    const logs = server.logs.join("\n");
    expect(logs).toContain('"token":"ingest"');
    expect(logs).toContain('"msg":"request refused"');
    for (const token of [...Object.values(tokens), wrongToken]) expect(logs).not.toContain(token);
    // Only the hint "Authorization: Bearer <token>" may follow the scheme name.
    expect(logs).not.toMatch(/Bearer (?!<token>)/);
  });
});

describe("a bad token file", () => {
  it("stops the server at startup with exit code 2 and the reason, without quoting the token", () => {
    const file = join(tempDir(), "tokens.json");
    const token = secret();
    writeFileSync(file, JSON.stringify([{ name: "ingest", token, roles: ["publish"], topic: ["orders."] }]));
    const run = spawnSync(process.execPath, [serverEntry, "--port", "0", "--db", join(tempDir(), "x.db"), "--auth-tokens", file], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('entries[0].topic: unknown field (allowed: name, token, roles, topics)');
    expect(run.stdout + run.stderr).not.toContain(token);
  });
});
