/**
 * Answers sent before the request's body has arrived whole (a body over the
 * limit, a refused token) reach clients that write their whole body before
 * they read anything: Python's urllib, and a raw socket that does the same.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonEvent } from "../support/events.js";
import { startServer, tempDir, type TestServer } from "../support/server.js";

const run = promisify(execFile);

/** A small limit, so that "over the limit" bodies stay small and fast. */
const maxMessageBytes = 64 * 1024;

/**
 * Bodies over the limit are larger than what the kernel's socket buffers
 * absorb on loopback (a few MiB): with less, a client finishes writing before
 * the server could close on it, and the test could not fail.
 */
const overLimit = 8 * 1024 * 1024;
const token = randomBytes(24).toString("base64url");

let server: TestServer;
let guarded: TestServer;

beforeAll(async () => {
  const tokens = join(tempDir(), "tokens.json");
  writeFileSync(tokens, JSON.stringify([{ name: "ingest", token, roles: ["publish"] }]));
  [server, guarded] = await Promise.all([
    startServer({ args: ["--max-message-bytes", String(maxMessageBytes), "--max-payload-bytes", String(maxMessageBytes)] }),
    startServer({ args: ["--max-message-bytes", String(maxMessageBytes), "--max-payload-bytes", String(maxMessageBytes), "--auth-tokens", tokens] }),
  ]);
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  expect(await guarded.stop()).toBe(0);
});

/** A publish body of about `bytes` bytes. */
function bodyOf(bytes: number): string {
  return JSON.stringify({ events: [jsonEvent({ payload: { blob: "b".repeat(bytes) } })] });
}

/**
 * POSTs with Python's urllib, which sends Content-Length and
 * "Connection: close" and writes the whole body before it reads the answer;
 * prints the status and body it got, or the error it met.
 */
async function urllibPost(url: string, bytes: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | { error: string }> {
  const script = `
import json, sys, urllib.request, urllib.error
url, size, headers = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
body = json.dumps({"events": [{"topic": "orders", "event_id": "e-1", "timestamp": "2025-10-24T10:00:00Z", "source": "urllib", "payload": {"blob": "b" * size}}]}).encode()
request = urllib.request.Request(url, data=body, headers={"content-type": "application/json", **headers}, method="POST")
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.dumps({"status": response.status, "body": response.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
`;
  const { stdout } = await run("python3", ["-c", script, url, String(bytes), JSON.stringify(headers)], { timeout: 60_000 });
  return JSON.parse(stdout) as { status: number; body: string } | { error: string };
}

/** Writes a whole HTTP/1.1 request, body included, and only then reads until the server closes or `until` matches. */
function writeFirst(port: number, request: Buffer, until?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (until?.test(received)) socket.end();
    });
    socket.on("close", () => resolve(received));
    socket.on("error", reject);
    socket.pause();
    socket.write(request, () => socket.resume());
  });
}

describe("an answer sent before the body was read", () => {
  it("reaches Python's urllib: a body over the limit gets the 413 with its JSON message", async () => {
    const answer = await urllibPost(`${server.url}/publish`, overLimit);
    expect(answer).toMatchObject({ status: 413 });
    const body = JSON.parse((answer as { body: string }).body) as { code: string; message: string };
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toMatch(/^body of \d+ bytes exceeds the 65536-byte limit$/);
  });

  it("reaches Python's urllib on a Connect route too (resource_exhausted, 429 as Connect maps it)", async () => {
    const answer = await urllibPost(`${server.url}/aggregator.v1.AggregatorService/Publish`, overLimit);
    expect(answer).toMatchObject({ status: 429 });
    expect(JSON.parse((answer as { body: string }).body)).toMatchObject({ code: "resource_exhausted" });
  });

  it("reaches Python's urllib when the token is refused before the body is read", async () => {
    const missing = await urllibPost(`${guarded.url}/publish`, overLimit);
    expect(missing).toMatchObject({ status: 401 });
    const accepted = await urllibPost(`${guarded.url}/publish`, 1000, { authorization: `Bearer ${token}` });
    expect(accepted).toMatchObject({ status: 200 });
  });

  it("reaches a client that streams a chunked body over the limit before reading", async () => {
    const chunk = Buffer.from(bodyOf(overLimit));
    const head = `POST /publish HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`;
    const request = Buffer.concat([Buffer.from(head), Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n0\r\n\r\n")]);
    const answer = await writeFirst(server.port, request);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"message":"body exceeds the 65536-byte limit"');
  });

  it("keeps a keep-alive connection usable: the next request on it is answered", async () => {
    const body = Buffer.from(bodyOf(overLimit));
    const first = `POST /publish HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const second = "GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    const answer = await writeFirst(server.port, Buffer.concat([Buffer.from(first), body, Buffer.from(second)]));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/HTTP\/1\.1 200 OK[\s\S]*"status":"healthy"/);
  });

  it("stops reading a body that goes on past 64 MiB after the answer: the connection is cut, and the server keeps serving", async () => {
    const declared = 200 * 1024 * 1024;
    const outcome = await new Promise<string>((resolve) => {
      const socket = net.connect(server.port, "127.0.0.1");
      socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
      socket.on("close", () => resolve("closed"));
      socket.write(`POST /publish HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < declared && socket.write(chunk)) sent += chunk.length;
        if (sent < declared) socket.once("drain", pump);
      };
      pump();
    });
    expect(outcome).toMatch(/^(EPIPE|ECONNRESET|closed)$/);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("over HTTP/2, reaches a client that sends its whole body first, and the stream then ends without error", async () => {
    const session = http2.connect(server.url);
    try {
      const request = session.request({ ":method": "POST", ":path": "/publish", "content-type": "application/json" });
      request.end(Buffer.from(bodyOf(overLimit)));
      const [status, text, rstCode] = await new Promise<[number, string, number]>((resolve, reject) => {
        let got = 0;
        let data = "";
        request.on("response", (headers) => (got = Number(headers[":status"])));
        request.on("data", (chunk: Buffer) => (data += chunk.toString("utf8")));
        request.on("close", () => resolve([got, data, request.rstCode ?? 0]));
        request.on("error", reject);
      });
      expect(status).toBe(413);
      expect(text).toContain("resource_exhausted");
      expect(rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.close();
    }
  });
});
