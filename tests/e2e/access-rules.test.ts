/**
 * Fail-closed authorization: an HTTP route or an RPC that is added without an
 * access rule (auth/access-rules.ts) is refused, with authentication on, even
 * to a valid token. Each test adds one to the server's own route table or
 * Connect routes, behind the real gate, and serves it on a real socket.
 */
import { create, createFileRegistry, type DescMethodUnary } from "@bufbuild/protobuf";
import { EmptySchema, FileDescriptorProtoSchema, file_google_protobuf_empty } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json } from "../../src/answers/render.js";
import { Gate } from "../../src/auth/gate.js";
import { gateInterceptor } from "../../src/auth/interceptor.js";
import { parseTokenFile } from "../../src/auth/token-file.js";
import { RouteTable } from "../../src/http/route-table.js";

const token = "test-token-0123456789abcdef";
const gate = new Gate(parseTokenFile(JSON.stringify([{ name: "ops", token, roles: ["publish", "read"] }])), pino({ level: "silent" }));

/** A method that is not in the rule table: test.v1.Unlisted/Ping(Empty) returns (Empty). */
function unlistedMethod(): DescMethodUnary<typeof EmptySchema, typeof EmptySchema> {
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/unlisted.proto",
    package: "test.v1",
    syntax: "proto3",
    dependency: ["google/protobuf/empty.proto"],
    service: [{ name: "Unlisted", method: [{ name: "Ping", inputType: ".google.protobuf.Empty", outputType: ".google.protobuf.Empty" }] }],
  });
  const method = createFileRegistry(file, () => file_google_protobuf_empty).getService("test.v1.Unlisted")!.methods[0]!;
  return method as DescMethodUnary<typeof EmptySchema, typeof EmptySchema>;
}

let server: http.Server;
let baseUrl: string;
let handled = 0;

beforeAll(async () => {
  const routes = new RouteTable(
    [
      // A route added without a rule. Had the gate let it through, it would answer 200.
      { method: "GET", path: "/test/no-rule", handle: async () => (handled++, json(200, { ok: true })) },
      // A route with a rule ("GET /health" is open), served by the same table.
      { method: "GET", path: "/health", handle: async () => json(200, { status: "healthy" }) },
    ],
    gate,
    pino({ level: "silent" }),
  );
  const rpc = connectNodeAdapter({
    routes: (router) => router.rpc(unlistedMethod(), () => (handled++, create(EmptySchema))),
    interceptors: [gateInterceptor(gate)],
  });
  server = http.createServer((req, res) => {
    if (!routes.serve(req, res)) rpc(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe("with authentication on", () => {
  it("refuses an HTTP route that has no access rule, even to a valid token, and never runs it", async () => {
    for (const headers of [{ authorization: `Bearer ${token}` }, {}] as Record<string, string>[]) {
      const res = await fetch(`${baseUrl}/test/no-rule`, { headers });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ code: "permission_denied", message: "GET /test/no-rule has no access rule" });
    }
    expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
    expect(handled).toBe(0);
  });

  it("refuses an RPC that has no access rule, even to a valid token, and never runs it", async () => {
    const transport = createConnectTransport({ baseUrl, httpVersion: "1.1" });
    const err = await transport.unary(unlistedMethod(), undefined, undefined, { authorization: `Bearer ${token}` }, {}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.PermissionDenied);
    expect(err?.rawMessage).toBe("test.v1.Unlisted/Ping has no access rule");
    expect(handled).toBe(0);
  });
});
