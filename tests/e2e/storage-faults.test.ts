import { create, toBinary } from "@bufbuild/protobuf";
import Database from "better-sqlite3";
import { Code, ConnectError } from "@connectrpc/connect";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { grpcClient } from "../support/clients.js";
import { PublishRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { makeEvent } from "../support/events.js";
import { grpcFrame, grpcStatusOf, http2Request } from "../support/raw-http.js";
import { startServer, tempDir, type TestServer } from "../support/server.js";

let server: TestServer | undefined;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  await server?.stop();
  server = undefined;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome, "the call should have been refused").toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

function checkIntegrity(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    const rows = (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    const c = db.prepare("SELECT * FROM counters").get() as { received: number; unique_processed: number; duplicate_dropped: number; conflicts: number };
    expect(c.unique_processed).toBe(rows);
    expect(c.received).toBe(c.unique_processed + c.duplicate_dropped + c.conflicts);
    return rows;
  } finally {
    db.close();
  }
}

/** A real small filesystem makes a real "disk full"; mounting needs root, which CI has. */
function mountSmallFilesystem(megabytes: number): string | undefined {
  const dir = join(tempDir("tally-full-"), "mnt");
  mkdirSync(dir);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", dir], { stdio: "ignore" });
  if (mounted.status !== 0) return undefined;
  cleanups.push(() => spawnSync("umount", ["-l", dir], { stdio: "ignore" }));
  return dir;
}

const canMount = process.getuid?.() === 0 && spawnSync("mount", ["--version"], { stdio: "ignore" }).status === 0;
/** CI runs as root: there the disk-full test must run, never skip. */
const mountRequired = process.env.CI === "true";

describe("storage faults", () => {
  it("answers unavailable when another process holds the database lock past the busy timeout, and stores nothing", async () => {
    server = await startServer();
    const client = grpcClient(server.url);
    await client.publish({ events: [makeEvent()] });

    const intruder = new Database(server.dbPath);
    intruder.exec("BEGIN IMMEDIATE");
    const event = makeEvent();
    const err = await refusal(client.publish({ events: [event] }));
    intruder.exec("ROLLBACK");
    intruder.close();

    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toContain("busy");
    expect(err.rawMessage).not.toMatch(/SQLITE|\/tmp|INSERT/);
    const retried = await client.publish({ events: [event] });
    expect(retried.accepted).toBe(1);
    await server.stop();
    expect(checkIntegrity(server.dbPath)).toBe(2);
  });

  it("answers deadline_exceeded when a gRPC deadline passes before the commit, and a re-send afterwards is safe", async () => {
    server = await startServer();
    const intruder = new Database(server.dbPath);
    intruder.exec("BEGIN IMMEDIATE");
    const event = makeEvent();
    // Raw HTTP/2, so the answer is the server's: a client library would also give up on its own at the deadline.
    const res = await http2Request(server.url, {
      path: "/aggregator.v1.AggregatorService/Publish",
      headers: { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "300m" },
      body: grpcFrame(toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [event] }))),
    });
    intruder.exec("ROLLBACK");
    intruder.close();

    // Answered at its deadline: had the server waited for the store, the answer would be unavailable ("busy") after 5 s.
    expect(grpcStatusOf(res)).toEqual({ code: Code.DeadlineExceeded, message: "the operation timed out" });
    // The batch's fate was unknown to the client; re-sending settles it either way, once.
    const client = grpcClient(server.url);
    const retried = await client.publish({ events: [event] });
    expect(retried.accepted + retried.duplicates).toBe(1);
    await server.stop();
    expect(checkIntegrity(server.dbPath)).toBe(1);
  });

  it.skipIf(!canMount && !mountRequired)("answers unavailable on a full disk without corrupting anything, and resumes when space returns", async () => {
    const dir = mountSmallFilesystem(1);
    expect(dir, "mounting a tmpfs failed").toBeDefined();
    server = await startServer({ dbPath: join(dir!, "aggregator.db") });
    const client = grpcClient(server.url);

    let accepted = 0;
    let full: ConnectError | undefined;
    while (full === undefined) {
      const batch = Array.from({ length: 200 }, () => makeEvent({ payload: { blob: "x".repeat(400) } }));
      try {
        accepted += (await client.publish({ events: batch })).accepted;
      } catch (err) {
        full = ConnectError.from(err);
      }
    }
    expect(full.code).toBe(Code.Unavailable);
    expect(full.rawMessage).toContain("full");
    const stats = await client.stats({});
    expect(stats.uniqueProcessed).toBe(BigInt(accepted));

    execFileSync("mount", ["-o", "remount,size=64m", dir!]);
    const after = await client.publish({ events: Array.from({ length: 200 }, () => makeEvent()) });
    expect(after.accepted).toBe(200);
    await server.stop();
    expect(checkIntegrity(join(dir!, "aggregator.db"))).toBe(accepted + 200);
  });
});
