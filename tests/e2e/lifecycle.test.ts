import Database from "better-sqlite3";
import { Code, ConnectError } from "@connectrpc/connect";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { grpcClient, healthClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { serverEntry, startServer, tempDir } from "../support/server.js";

describe("lifecycle", () => {
  it("answers SERVING on grpc.health.v1 Check and Watch", async () => {
    const server = await startServer();
    const health = healthClient(server.url);
    expect((await health.check({})).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "aggregator.v1.AggregatorService" })).status).toBe(ServingStatus.SERVING);
    const unknown = await health.check({ service: "nope" }).catch((e: unknown) => e);
    expect((unknown as ConnectError).code).toBe(Code.NotFound);
    const watch = new AbortController();
    for await (const update of health.watch({}, { signal: watch.signal })) {
      expect(update.status).toBe(ServingStatus.SERVING);
      break;
    }
    watch.abort();
    expect(await server.stop()).toBe(0);
  });

  it("on SIGTERM answers every in-flight request, commits what it acknowledged, and exits 0", async () => {
    const server = await startServer();
    const client = grpcClient(server.url);
    const acked: string[] = [];
    const outcomes: string[] = [];
    let stopping = false;
    let producing: () => void = () => undefined;
    const enough = new Promise<void>((resolve) => (producing = resolve));

    // A stream that stays open and idle: shutdown must not wait for it forever.
    const idle = client
      .publishStream(
        (async function* () {
          yield { events: [makeEvent()] };
          await new Promise(() => undefined);
        })(),
      )
      .then(
        () => "answered",
        (e: unknown) => ConnectError.from(e).code,
      );

    async function producer() {
      while (!stopping) {
        const batch = Array.from({ length: 20 }, () => makeEvent());
        try {
          await client.publish({ events: batch });
          acked.push(...batch.map((e) => e.eventId));
          outcomes.push("ok");
          if (acked.length >= 400) producing();
        } catch (err) {
          // After GOAWAY the client's new streams are refused unprocessed (REFUSED_STREAM, which
          // connect-node reports as internal); gRPC treats that as unavailable, and so do we.
          const e = ConnectError.from(err);
          const refused = e.code === Code.Unavailable || e.rawMessage.includes("REFUSED_STREAM");
          outcomes.push(refused ? "refused" : `other: ${String(err)}`);
          return;
        }
      }
    }
    const producers = [producer(), producer(), producer(), producer()];
    await enough;
    const exitCode = server.stop("SIGTERM");
    stopping = true;
    await Promise.all(producers);
    expect(await exitCode).toBe(0);
    expect(await idle).toBe(Code.Unavailable);
    expect(outcomes.filter((o) => o.startsWith("other"))).toEqual([]);

    const db = new Database(server.dbPath, { readonly: true });
    const stored = new Set((db.prepare("SELECT event_id FROM events").all() as { event_id: string }[]).map((r) => r.event_id));
    db.close();
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
  });

  it("refuses a corrupt database file with a clear message and exit code 3", () => {
    const dbPath = join(tempDir(), "aggregator.db");
    writeFileSync(dbPath, "this is not a database, just some text that is long enough to look like a header".repeat(100));
    const run = spawnSync(process.execPath, [serverEntry, "--port", "0", "--db", dbPath], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(3);
    expect(run.stdout + run.stderr).toContain("not a usable SQLite database");
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses bad configuration with exit code 2 and the reason", () => {
    const run = spawnSync(process.execPath, [serverEntry, "--durability", "maybe"], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("full, normal");
  });
});
