import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function post(path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  const res = await fetch(`${server.url}${path}`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

async function get(path: string) {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("POST /publish", () => {
  it("accepts a single event object and reports it ACCEPTED, then DUPLICATE", async () => {
    const event = jsonEvent();
    const first = await post("/publish", event);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ received: 1, accepted: 1, duplicates: 0, conflicts: 0, results: [{ status: "ACCEPTED" }] });
    const again = await post("/publish", event);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 1, results: [{ status: "DUPLICATE", seq: first.body.results[0].seq }] });
  });

  it("accepts a JSON array and an {events: [...]} object", async () => {
    const asArray = await post("/publish", [jsonEvent(), jsonEvent()]);
    expect(asArray.body.accepted).toBe(2);
    const asObject = await post("/publish", { events: [jsonEvent(), jsonEvent(), jsonEvent()] });
    expect(asObject.body.accepted).toBe(3);
  });

  it("reads curl's default form content type as JSON", async () => {
    const res = await post("/publish", jsonEvent(), { "content-type": "application/x-www-form-urlencoded" });
    expect(res.status).toBe(200);
  });

  it("answers 400 with every bad index and field, and stores nothing", async () => {
    const topic = `rest-invalid-${Date.now()}`;
    const res = await post("/publish", [jsonEvent({ topic }), jsonEvent({ topic, event_id: 7 }), jsonEvent({ topic, timestamp: "yesterday" }), "nope"]);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.violations).toEqual([
      { index: 1, field: "event_id", description: expect.stringContaining("string") },
      { index: 2, field: "timestamp", description: expect.stringContaining("RFC 3339") },
      { index: 3, field: "event", description: expect.stringContaining("object") },
    ]);
    const stored = await get(`/events?topic=${topic}`);
    expect(stored.body.count).toBe(0);
  });

  it("says where in a payload a string or key cannot be stored, and stores nothing", async () => {
    const topic = `rest-payload-path-${Date.now()}`;
    // JSON.stringify would escape the lone surrogates; the body must carry them as JSON escapes, which JSON.parse decodes.
    const body = JSON.stringify([
      jsonEvent({ topic, payload: { ok: ["fine"], a: [1, { b: "LONE" }] } }),
      jsonEvent({ topic, payload: { a: { KEY: 1 } } }),
      jsonEvent({ topic, payload: { a: [[{ z: 1 }]], b: { c: { PROTO: {} } } } }),
    ])
      .replace('"LONE"', '"\\ud800x"')
      .replace('"KEY"', '"k\\udc00"')
      .replace('"PROTO"', '"__proto__"');
    const res = await post("/publish", body);
    expect(res.status).toBe(400);
    expect(res.body.violations).toEqual([
      { index: 0, field: "payload", description: "has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.a[1].b" },
      { index: 1, field: "payload", description: "has a key that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.a" },
      { index: 2, field: "payload", description: 'has the key "__proto__" at payload.b.c, which protobuf decoding would drop silently; rename it' },
    ]);
    expect((await get(`/events?topic=${topic}`)).body.count).toBe(0);
  });

  it("answers 400 for malformed JSON and 415 for a non-JSON content type", async () => {
    const malformed = await post("/publish", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.body.message).toContain("not valid JSON");
    const xml = await post("/publish", "<event/>", { "content-type": "application/xml" });
    expect(xml.status).toBe(415);
  });

  it("answers 413 for a body over the message limit", async () => {
    const res = await post("/publish", jsonEvent({ payload: { blob: "z".repeat(5 * 1024 * 1024) } }));
    expect(res.status).toBe(413);
    expect(res.body.code).toBe("resource_exhausted");
  });
});

describe("GET /events, /stats, /health", () => {
  it("lists stored events filtered by topic and source, with a cursor", async () => {
    const topic = `rest-query-${Date.now()}`;
    await post("/publish", [jsonEvent({ topic, source: "a" }), jsonEvent({ topic, source: "b" }), jsonEvent({ topic, source: "a" })]);
    const bySource = await get(`/events?topic=${topic}&source=a`);
    expect(bySource.status).toBe(200);
    expect(bySource.body.count).toBe(2);
    expect(bySource.body.events[0]).toMatchObject({ topic, source: "a", timestamp: "2025-10-24T10:00:00Z", payload: { amount: 100, currency: "EUR" } });
    expect(bySource.body.events[0]).toHaveProperty("event_id");
    expect(bySource.body.events[0]).toHaveProperty("received_at");
    const page = await get(`/events?topic=${topic}&limit=2`);
    expect(page.body).toMatchObject({ count: 2, has_more: true });
    const next = await get(`/events?topic=${topic}&after=${page.body.next_cursor}`);
    expect(next.body.count).toBe(1);
  });

  it("answers 400 for a non-numeric limit", async () => {
    const res = await get("/events?limit=lots");
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("limit");
  });

  it("reports the counters the older clients read", async () => {
    const topic = `rest-stats-${Date.now()}`;
    const event = jsonEvent({ topic });
    await post("/publish", event);
    await post("/publish", event);
    const { body } = await get("/stats");
    expect(body.received).toBe(body.unique_processed + body.duplicate_dropped + body.conflicts);
    expect(body.topics).toContain(topic);
    expect(body.topic_counts[topic]).toBe(1);
    expect(typeof body.uptime_seconds).toBe("number");
  });

  it("lists the largest topics in /stats (top_topics of them, with the number of all) and every topic, a page at a time, in /topics", async () => {
    const prefix = `rest-topics-${Date.now()}-`;
    // Topic k gets k + 1 events, so the largest is the last.
    const names = Array.from({ length: 12 }, (_, k) => `${prefix}${String(k).padStart(2, "0")}`);
    await post("/publish", names.flatMap((topic, k) => Array.from({ length: k + 1 }, () => jsonEvent({ topic }))));

    const top = await get("/stats?top_topics=3");
    expect(top.body.topics).toHaveLength(3);
    expect(top.body.topics).toEqual([names[11], names[10], names[9]]);
    expect(top.body.topic_counts).toEqual({ [names[11]!]: 12, [names[10]!]: 11, [names[9]!]: 10 });
    expect(top.body.topic_count).toBeGreaterThanOrEqual(12);

    const listed: string[] = [];
    let after = "";
    for (;;) {
      const page = await get(`/topics?limit=5&after=${encodeURIComponent(after)}`);
      expect(page.status).toBe(200);
      expect(page.body.topics.length).toBeLessThanOrEqual(5);
      listed.push(...page.body.topics.map((t: { name: string }) => t.name));
      after = page.body.next_after;
      if (!page.body.has_more) break;
    }
    expect(listed).toEqual([...listed].sort());
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.length).toBe(top.body.topic_count);
    expect(listed.filter((n) => n.startsWith(prefix))).toEqual(names);
  });

  it("pages a source filter through at most 10,000 examined events at a time, empty pages saying to read on", async () => {
    const source = `rest-rare-${Date.now()}`;
    await post("/publish", jsonEvent({ source }));
    const events: unknown[] = [];
    let after = 0;
    for (;;) {
      const page = await get(`/events?source=${source}&after=${after}`);
      expect(page.body.next_cursor).toBeGreaterThanOrEqual(after);
      events.push(...page.body.events);
      after = page.body.next_cursor;
      if (!page.body.has_more) break;
    }
    expect(events).toHaveLength(1);
  });

  it("reports health", async () => {
    const res = await get("/health");
    expect(res).toMatchObject({ status: 200, body: { status: "healthy" } });
  });

  it("answers 404 for an unknown route and 405 with Allow for a wrong method", async () => {
    expect((await get("/nope")).status).toBe(404);
    const res = await fetch(`${server.url}/stats`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});
