import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { tempDir } from "../support/server.js";
import { describeEventStoreContract } from "./contract.js";

/**
 * The compiled module, not the TypeScript source: the store starts its writer
 * from ./writer-worker.js beside it, which exists only in dist/
 * (tests/global-setup.ts builds it before any test runs).
 */
const { openStore } = (await import(new URL("../../dist/src/store/open.js", import.meta.url).href)) as typeof import("../../src/store/open.js");

const silent = pino({ level: "silent" });

function openSqlite(dir: string) {
  return openStore({ dbPath: join(dir, "aggregator.db"), durability: "normal" }, silent);
}

describeEventStoreContract("SQLite", openSqlite);

describe("SQLite store", () => {
  it("refuses a file that is not a database with a StoreError of kind unusable", async () => {
    const dir = tempDir("tally-store-");
    writeFileSync(join(dir, "aggregator.db"), "this is a text file, not an SQLite database\n".repeat(200));
    const err: unknown = await openSqlite(dir).then(
      async (store) => {
        await store.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // The class from dist/ is not the one in src/, so the check is by name and kind.
    expect((err as Error).constructor.name).toBe("StoreError");
    expect((err as { kind?: unknown }).kind).toBe("unusable");
  });
});
