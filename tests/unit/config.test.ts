import { describe, expect, it } from "vitest";
import { ConfigError, defaults, loadConfig } from "../../src/app/config.js";

describe("loadConfig", () => {
  it("uses the defaults when nothing is given", () => {
    expect(loadConfig([], {})).toEqual(defaults);
  });

  it("prefers a flag over its TALLY_ env var, and that over PORT", () => {
    expect(loadConfig(["--port", "9000"], { TALLY_PORT: "9100", PORT: "9200" }).port).toBe(9000);
    expect(loadConfig([], { TALLY_PORT: "9100", PORT: "9200" }).port).toBe(9100);
    expect(loadConfig([], { PORT: "9200" }).port).toBe(9200);
    expect(loadConfig(["--db", "/tmp/x.db", "--durability", "normal"], {})).toMatchObject({ dbPath: "/tmp/x.db", durability: "normal" });
    expect(loadConfig([], { TALLY_QUEUE_EVENTS: "20000", TALLY_MAX_BATCH: "500" })).toMatchObject({ queueEvents: 20000, maxBatch: 500 });
  });

  it("explains bad values", () => {
    expect(() => loadConfig(["--port", "http"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--durability", "sometimes"], {})).toThrow(/full, normal/);
    expect(() => loadConfig([], { TALLY_PORT: "70000" })).toThrow(/TALLY_PORT/);
    expect(() => loadConfig(["--max-batch", "100", "--queue-events", "10"], {})).toThrow(/queue-events/);
    expect(() => loadConfig(["--bogus"], {})).toThrow(ConfigError);
  });
});
