import Database from "better-sqlite3";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { connectJsonClient, grpcClient } from "../support/clients.js";
import { jsonEvent, makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

/**
 * Holding SQLite's write lock from the test stalls the server's writer, so
 * the queue fills deterministically, without timing games.
 */
function holdWriteLock(dbPath: string) {
  const db = new Database(dbPath);
  db.exec("BEGIN IMMEDIATE");
  return () => {
    db.exec("ROLLBACK");
    db.close();
  };
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setImmediate(resolve));
}

let server: TestServer;

afterEach(async () => {
  await server?.stop();
});

describe("backpressure", () => {
  it("refuses unary publishes with unavailable (HTTP 503 + Retry-After) while the queue is full, then commits what it accepted", async () => {
    server = await startServer({ args: ["--max-batch", "10", "--queue-events", "10"] });
    const client = grpcClient(server.url);
    const release = holdWriteLock(server.dbPath);

    const queued = client.publish({ events: Array.from({ length: 10 }, () => makeEvent()) });
    await until(async () => (await client.stats({})).queueEvents === 10);

    const refused = await client.publish({ events: [makeEvent()] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.Unavailable);

    const json = await connectJsonClient(server.url).publish({ events: [makeEvent()] }).catch((e: unknown) => e);
    expect((json as ConnectError).code).toBe(Code.Unavailable);

    const rest = await fetch(`${server.url}/publish`, { method: "POST", body: JSON.stringify(jsonEvent()) });
    expect(rest.status).toBe(503);
    expect(rest.headers.get("retry-after")).toBe("1");

    release();
    expect((await queued).accepted).toBe(10);
    const stats = await client.stats({});
    expect(stats).toMatchObject({ uniqueProcessed: 10n, queueEvents: 0 });
    expect(stats.rejectedOverload).toBe(3n);
  });

  it("makes a stream wait for room instead of failing it", async () => {
    server = await startServer({ args: ["--max-batch", "10", "--queue-events", "10"] });
    const client = grpcClient(server.url);
    const release = holdWriteLock(server.dbPath);
    let sent = 0;
    const stream = client.publishStream(
      (async function* () {
        for (let i = 0; i < 5; i++) {
          sent++;
          yield { events: Array.from({ length: 10 }, () => makeEvent()) };
        }
      })(),
    );
    await until(async () => (await client.stats({})).queueEvents === 10);
    release();
    expect(await stream).toMatchObject({ received: 50n, accepted: 50n });
    expect(sent).toBe(5);
  });
});
