/**
 * TLS on the one port: a real server started with --tls-cert/--tls-key and a
 * certificate made for this run, driven by connect-node (gRPC over h2, Connect
 * JSON over HTTP/1.1), grpc-js, node:https and node:http2, each trusting that
 * certificate only.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { jsonEvent, makeEvent } from "../support/events.js";
import { serverEntry, startServer, tempDir, type TestServer } from "../support/server.js";

const dir = tempDir("tally-tls-");
const token = randomBytes(24).toString("base64url");

/** A self-signed certificate for localhost and 127.0.0.1, valid for a day. */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
      .concat(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert]),
    { stdio: "ignore" },
  );
  return { cert, key };
}

let server: TestServer;
let ca: Buffer;
let url: string;

beforeAll(async () => {
  const files = selfSigned("server");
  ca = readFileSync(files.cert);
  const tokens = join(dir, "tokens.json");
  writeFileSync(tokens, JSON.stringify([{ name: "tls-client", token, roles: ["publish", "read"] }]));
  server = await startServer({ args: ["--tls-cert", files.cert, "--tls-key", files.key, "--auth-tokens", tokens] });
  url = `https://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const bearer: Interceptor = (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

/** One HTTPS/1.1 request trusting only the test certificate; also says which protocol ALPN chose. */
function httpsRequest(method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${token}` }, alpn?: string[]) {
  return new Promise<{ status: number; alpn: string | false | null; body: Record<string, any> }>((resolve, reject) => {
    const options: https.RequestOptions = { method, ca, agent: false, headers: { "content-type": "application/json", ...headers }, ...(alpn && { ALPNProtocols: alpn }) };
    const req = https.request(`${url}${path}`, options, (res) => {
      const alpn = (res.socket as TLSSocket).alpnProtocol;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, alpn, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, any> }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("with --tls-cert and --tls-key", () => {
  it("serves gRPC over HTTP/2 with TLS to connect-node, including health", async () => {
    const transport = createGrpcTransport({ baseUrl: url, nodeOptions: { ca }, interceptors: [bearer] });
    const client = createClient(AggregatorService, transport);
    const topic = `tls.${randomUUID()}`;
    expect((await client.publish({ events: [makeEvent({ topic })] })).accepted).toBe(1);
    expect((await client.events({ topic })).events).toHaveLength(1);
    const health = createClient(Health, createGrpcTransport({ baseUrl: url, nodeOptions: { ca } }));
    expect((await health.check({})).status).toBe(ServingStatus.SERVING);
  });

  it("serves the Connect protocol over HTTP/1.1 with TLS, and still asks for a token", async () => {
    const client = createClient(AggregatorService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { ca }, interceptors: [bearer] }));
    expect((await client.publish({ events: [makeEvent({ topic: `tls.${randomUUID()}` })] })).accepted).toBe(1);
    const anonymous = createClient(AggregatorService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { ca } }));
    const err = await anonymous.stats({}).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("serves grpc-js with SSL credentials", async () => {
    const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");
    const definition = protoLoader.loadSync("aggregator/v1/aggregator.proto", { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [protoDir] });
    const Service = ((grpc.loadPackageDefinition(definition).aggregator as grpc.GrpcObject).v1 as grpc.GrpcObject).AggregatorService as grpc.ServiceClientConstructor;
    const client = new Service(`127.0.0.1:${server.port}`, grpc.credentials.createSsl(ca));
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    try {
      const stats = await new Promise<{ received: string }>((resolve, reject) => {
        (client as unknown as Record<string, Function>).Stats!.call(client, {}, metadata, { deadline: Date.now() + 30_000 }, (err: Error | null, res: { received: string }) =>
          err ? reject(err) : resolve(res),
        );
      });
      expect(Number(stats.received)).toBeGreaterThanOrEqual(1);
    } finally {
      client.close();
    }
  });

  it("serves the REST routes over HTTPS/1.1, and negotiates h2 by ALPN for HTTP/2 clients", async () => {
    // node:https offers no ALPN by default: such clients get HTTP/1.1, as do those that ask for it.
    const published = await httpsRequest("POST", "/publish", jsonEvent({ topic: `tls.${randomUUID()}` }));
    expect(published).toMatchObject({ status: 200, alpn: false, body: { accepted: 1 } });
    const asked = await httpsRequest("POST", "/publish", jsonEvent({ topic: `tls.${randomUUID()}` }), undefined, ["http/1.1"]);
    expect(asked).toMatchObject({ status: 200, alpn: "http/1.1", body: { accepted: 1 } });
    expect(await httpsRequest("GET", "/health", undefined, {})).toMatchObject({ status: 200, body: { status: "healthy" } });
    expect((await httpsRequest("GET", "/stats", undefined, {})).status).toBe(401);

    const session = http2.connect(url, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ":path": "/health" });
        stream.on("response", (headers) => resolve(Number(headers[":status"])));
        stream.on("error", reject);
        stream.resume();
      });
      expect(status).toBe(200);
      expect(session.alpnProtocol).toBe("h2");
    } finally {
      session.close();
    }
  });

  it("serves nothing in cleartext, neither HTTP/1.1 nor h2c", async () => {
    const plain = await new Promise<string>((resolve) => {
      const req = http.get(`http://127.0.0.1:${server.port}/health`, (res) => resolve(`answered ${res.statusCode}`));
      req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    });
    expect(plain).not.toMatch(/^answered/);
    const h2c = await new Promise<string>((resolve) => {
      const session = http2.connect(`http://127.0.0.1:${server.port}`);
      session.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      const stream = session.request({ ":path": "/health" });
      stream.on("response", () => resolve("answered"));
      stream.on("error", () => undefined);
      stream.on("close", () => resolve("closed"));
      stream.end();
    });
    expect(h2c).not.toBe("answered");
  });
});

describe("TLS configuration", () => {
  function run(args: string[]) {
    return spawnSync(process.execPath, [serverEntry, "--port", "0", "--db", join(dir, "unused.db"), ...args], { encoding: "utf8", timeout: 20_000 });
  }

  it("refuses a certificate without its key, or a key that is not the certificate's, with exit code 2", () => {
    const one = selfSigned("one");
    const two = selfSigned("two");
    const alone = run(["--tls-cert", one.cert]);
    expect(alone.status, alone.stderr).toBe(2);
    expect(alone.stderr).toContain("--tls-cert and --tls-key go together");
    const mismatched = run(["--tls-cert", one.cert, "--tls-key", two.key]);
    expect(mismatched.status, mismatched.stderr).toBe(2);
    expect(mismatched.stderr).toMatch(/cannot be used: .*key values mismatch/);
  });
});
