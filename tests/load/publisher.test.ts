/**
 * The publisher CLI against a real server over each transport: it must send
 * exactly what it says, and the server must count exactly that (the CLI
 * checks Stats and exits 1 on a miscount). This drives the load
 * generator's own HTTP/1.1 and gRPC clients end to end.
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const publisherEntry = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "tools", "src", "tools", "publisher.js");

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("publisher CLI", () => {
  it.each([
    ["rest", 1, 50],
    ["rest", 25, 4],
    ["grpc", 1, 32],
    ["connect", 10, 4],
    ["grpc-stream", 100, 2],
  ])("over %s, %i per request, %i in flight, the server counts exactly what was sent", async (transport, batch, concurrency) => {
    const args = [publisherEntry, "--target", server.url, "--events", "1000", "--batch", String(batch), "--concurrency", String(concurrency), "--transport", transport];
    const { stdout } = await run(process.execPath, args, { timeout: 60_000 });
    expect(stdout).toMatch(/sent 1000 events \(800 distinct, 200 re-sends\)/);
    expect(stdout).toContain("ok: the service counted exactly what was sent");
  });
});
