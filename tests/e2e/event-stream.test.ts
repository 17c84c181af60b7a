/**
 * GET /events/stream end to end: a real server, read as Server-Sent Events
 * by fetch's body stream (as a browser's EventSource would) and by a real
 * `curl -N`. The claims: an event published after the stream opened arrives;
 * every event names its seq as the SSE id, and Last-Event-ID resumes right
 * after it; the filters deliver what they name; a quiet stream carries
 * heartbeats; bad queries are refused as JSON naming the parameter; a
 * topic-limited token reads only its topics; the HTTP/1.1 request timeout
 * does not cut a quiet stream.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";
import { secret, writeTokenFile } from "../support/tokens.js";
import { eventOf, heartbeatOf, parseFrames, SseStream, type SseEventData } from "../support/sse.js";

/** POST /publish; answers the seqs of the events, in order. */
async function publish(server: TestServer, events: Record<string, unknown>[], token?: string): Promise<number[]> {
  const res = await fetch(`${server.url}/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token !== undefined && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(events),
  });
  const body = (await res.json()) as { accepted: number; results: { status: string; seq: number }[] };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.accepted).toBe(events.length);
  return body.results.map((r) => r.seq);
}

/** `count` events of one topic, with event ids `${prefix}-0`, `${prefix}-1`, ... */
function eventsOf(topic: string, count: number, prefix = topic, overrides: Record<string, unknown> = {}): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => jsonEvent({ topic, event_id: `${prefix}-${i}`, ...overrides }));
}

const caughtUp = (s: SseStream) => s.heartbeats.some((h) => h.caughtUp);

describe("GET /events/stream", () => {
  let server: TestServer;
  const open: SseStream[] = [];
  /** Opens a stream on this server's path, closed after the test file. */
  async function stream(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const s = await SseStream.open(`${server.url}${path}`, headers);
    open.push(s);
    return s;
  }

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    for (const s of open) s.close();
    expect(await server.stop()).toBe(0);
  });

  it("curl -N prints an event published after the stream opened", async () => {
    const curl = spawn("curl", ["-N", "-s", "--fail-with-body", `http://127.0.0.1:${server.port}/events/stream?topic=demo`], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const waiters = new Set<() => void>();
    const exited = new Promise<number | null>((resolve) => curl.once("exit", (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void exited.then((code) => {
      exitCode = code;
      for (const wake of waiters) wake();
    });
    curl.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
      for (const wake of waiters) wake();
    });
    curl.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const printed = async (pattern: RegExp, what: string) => {
      while (!pattern.test(stdout)) {
        if (exitCode !== undefined) throw new Error(`curl exited ${exitCode} before printing ${what}:\n${stdout}\n${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.add(resolve);
        });
        waiters.clear();
      }
    };
    try {
      // The stream is open and has read all there is: what follows is live.
      await printed(/: heartbeat head_seq=\d+ caught_up=true\nid: \d+\n\n/, "its first heartbeat");
      expect(stdout).not.toContain("data:");
      const [seq] = await publish(server, [jsonEvent({ topic: "demo", event_id: "curl-demo-1", source: "curl-test", payload: { hello: "world" } })]);
      await printed(/"event_id":"curl-demo-1".*\n\n/, "the event");
      const delivered = parseFrames(stdout)
        .frames.map(eventOf)
        .filter((e) => e !== undefined);
      expect(delivered).toEqual([
        {
          seq,
          topic: "demo",
          event_id: "curl-demo-1",
          timestamp: "2025-10-24T10:00:00Z",
          source: "curl-test",
          payload: { hello: "world" },
          received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      ]);
      expect(stdout).toContain(`id: ${seq}\ndata: {"seq":${seq},`);
    } finally {
      curl.kill();
      await exited;
    }
  });

  it("answers as an event stream and gives every event its seq as the id, in seq order", async () => {
    const topic = "ids.every";
    const seqs = await publish(server, eventsOf(topic, 25));
    const s = await stream(`/events/stream?topic=${topic}`);
    expect(s.response.status).toBe(200);
    expect(s.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(s.response.headers.get("cache-control")).toBe("no-cache");
    await s.until(caughtUp, "catching up");
    const eventFrames = s.frames.filter((f) => f.data !== undefined);
    expect(eventFrames).toHaveLength(25);
    for (const frame of eventFrames) expect(frame.id).toBe(String(eventOf(frame)!.seq));
    expect(eventFrames.map((f) => Number(f.id))).toEqual(seqs);
    expect(s.events.map((e) => e.event_id)).toEqual(Array.from({ length: 25 }, (_, i) => `${topic}-${i}`));
    // The first frame tells EventSource how long to wait before reconnecting.
    expect(s.frames[0]!.retry).toMatch(/^\d+$/);
  });

  it("resumes right after Last-Event-ID: no gap and no duplicate, replay then live", async () => {
    const topic = "resume.last-id";
    const seqs = await publish(server, eventsOf(topic, 10));
    const resumed = await stream(`/events/stream?topic=${topic}`, { "last-event-id": String(seqs[4]) });
    await resumed.until(caughtUp, "catching up");
    expect(resumed.events.map((e) => e.seq)).toEqual(seqs.slice(5));
    const live = await publish(server, eventsOf(topic, 3, `${topic}-live`));
    await resumed.until((s) => s.events.length === 8, "the live events");
    expect(resumed.events.map((e) => e.seq)).toEqual([...seqs.slice(5), ...live]);
  });

  it("an EventSource-style reconnect with the last id it saw loses nothing and repeats nothing", async () => {
    const topic = "resume.reconnect";
    const first = await stream(`/events/stream?topic=${topic}&heartbeat_ms=100`);
    await first.until(caughtUp, "catching up");
    const before = await publish(server, eventsOf(topic, 6, `${topic}-a`));
    await first.until((s) => s.events.length === 6, "six events");
    first.close();
    const lastId = first.frames.filter((f) => f.id !== undefined).at(-1)!.id!;
    // Published while no stream is open.
    const between = await publish(server, eventsOf(topic, 4, `${topic}-b`));
    const second = await stream(`/events/stream?topic=${topic}`, { "last-event-id": lastId });
    await second.until(caughtUp, "catching up again");
    const after = await publish(server, eventsOf(topic, 2, `${topic}-c`));
    await second.until((s) => s.events.length === 6, "the events since the reconnect");
    expect([...first.events, ...second.events].map((e) => e.seq)).toEqual([...before, ...between, ...after]);
  });

  it("topic_prefix and source deliver only what they name; the caught-up heartbeat's id is past what they skipped", async () => {
    await publish(server, eventsOf("pf.orders", 3));
    await publish(server, eventsOf("pf.refunds", 3, "pf.refunds", { source: "billing" }));
    await publish(server, eventsOf("pfx", 3)); // shares the letters, not the prefix
    const byPrefix = await stream("/events/stream?topic_prefix=pf.");
    await byPrefix.until(caughtUp, "catching up");
    expect(byPrefix.events.map((e) => e.topic)).toEqual(["pf.orders", "pf.orders", "pf.orders", "pf.refunds", "pf.refunds", "pf.refunds"]);

    const bySource = await stream("/events/stream?source=billing");
    await bySource.until(caughtUp, "catching up");
    expect(bySource.events.map((e) => e.event_id)).toEqual(["pf.refunds-0", "pf.refunds-1", "pf.refunds-2"]);
    const heartbeat = bySource.heartbeats.find((h) => h.caughtUp)!;
    // Everything up to the head was examined: "pfx" events after the last billing one are behind the cursor too.
    expect(heartbeat.cursor).toBe(heartbeat.headSeq);
    expect(heartbeat.cursor).toBeGreaterThan(bySource.events.at(-1)!.seq);

    // Live, the filters hold too.
    await publish(server, [jsonEvent({ topic: "pf.orders", event_id: "live-1", source: "shop" }), jsonEvent({ topic: "pfx", event_id: "live-2", source: "billing" }), jsonEvent({ topic: "pf.x", event_id: "live-3", source: "billing" })]);
    await byPrefix.until((s) => s.events.length === 8, "the live prefixed events");
    await bySource.until((s) => s.events.length === 5, "the live billing events");
    expect(byPrefix.events.slice(6).map((e) => e.event_id)).toEqual(["live-1", "live-3"]);
    expect(bySource.events.slice(3).map((e) => e.event_id)).toEqual(["live-2", "live-3"]);
  });

  it("sends heartbeat comments, each followed by the cursor as id, on a quiet stream with heartbeat_ms=200", async () => {
    const s = await stream("/events/stream?topic=quiet.nobody-publishes&heartbeat_ms=200");
    await s.until((st) => st.heartbeats.length >= 4, "four heartbeats");
    expect(s.events).toEqual([]);
    const heartbeatFrames = s.frames.filter((f) => heartbeatOf(f) !== undefined);
    for (const frame of heartbeatFrames) {
      expect(frame.comments[0]).toMatch(/^heartbeat head_seq=\d+ caught_up=true$/);
      expect(frame.id).toMatch(/^\d+$/);
      expect(frame.data).toBeUndefined();
    }
  });

  it.each([
    ["topic and topic_prefix both", "?topic=a&topic_prefix=b", {}, "topic_prefix"],
    ["Last-Event-ID: abc", "?topic=a", { "last-event-id": "abc" }, "Last-Event-ID"],
    ["start=bogus", "?topic=a&start=bogus", {}, "start"],
    ["heartbeat_ms=5", "?topic=a&heartbeat_ms=5", {}, "heartbeat_ms"],
    ["after with start=new", "?topic=a&after=3&start=new", {}, "after"],
    ["since=yesterday", "?topic=a&since=yesterday", {}, "since"],
  ])("refuses %s with 400 and JSON naming the parameter", async (_, query, headers, parameter) => {
    const res = await fetch(`${server.url}/events/stream${query}`, { headers: { accept: "text/event-stream", ...headers } });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain(parameter);
  });
});

describe("GET /events/stream with authentication on", () => {
    const tokens = { admin: secret(), teamA: secret() };
  let server: TestServer;

  beforeAll(async () => {
    const file = writeTokenFile([
        { name: "admin", token: tokens.admin, roles: ["publish", "read"] },
        { name: "team-a-reader", token: tokens.teamA, roles: ["read"], topics: ["team-a."] },
      ]);
    server = await startServer({ args: ["--auth-tokens", file] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  const as = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

  it.each([
    ["another team's topic", "?topic=team-b.x", 'topic "team-b.x"'],
    ["no topic filter", "", "every topic"],
    ["a prefix wider than its own", "?topic_prefix=team-", 'topic_prefix "team-"'],
  ])("a topic-limited token gets 403 for %s", async (_, query, asked) => {
    const res = await fetch(`${server.url}/events/stream${query}`, { headers: as(tokens.teamA) });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("permission_denied");
    expect(body.message).toContain(asked);
  });

  it("without a token the stream is refused with 401", async () => {
    const res = await fetch(`${server.url}/events/stream?topic=team-a.x`);
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });

  it("a topic-limited token streams its own topic and its own prefix", async () => {
    const byTopic = await SseStream.open(`${server.url}/events/stream?topic=team-a.x`, as(tokens.teamA));
    const byPrefix = await SseStream.open(`${server.url}/events/stream?topic_prefix=team-a.`, as(tokens.teamA));
    try {
      expect([byTopic.response.status, byPrefix.response.status]).toEqual([200, 200]);
      await byTopic.until(caughtUp, "catching up");
      await byPrefix.until(caughtUp, "catching up");
      await publish(server, [jsonEvent({ topic: "team-b.x", event_id: "b-1" }), jsonEvent({ topic: "team-a.y", event_id: "a-y" }), jsonEvent({ topic: "team-a.x", event_id: "a-x" })], tokens.admin);
      await byTopic.until((s) => s.events.length === 1, "its topic's event");
      await byPrefix.until((s) => s.events.length === 2, "its prefix's events");
      expect(byTopic.events.map((e) => e.event_id)).toEqual(["a-x"]);
      expect(byPrefix.events.map((e) => e.event_id)).toEqual(["a-y", "a-x"]);
    } finally {
      byTopic.close();
      byPrefix.close();
    }
  });
});

describe("GET /events/stream over HTTP/1.1 with --request-timeout-ms 1000", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ args: ["--request-timeout-ms", "1000"] });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("is not cut by the request timeout: after more than 3 s of quiet it still delivers a new event", async () => {
    // Heartbeats 1.5 s apart: each gap is longer than the request timeout, so a stream subject to it would be cut in the first.
    const s = await SseStream.open(`${server.url}/events/stream?topic=timeout.quiet&heartbeat_ms=1500`);
    try {
      await s.until(caughtUp, "catching up");
      // The first heartbeat comes on catching up; two more are 2 × 1.5 s of quiet after it.
      await s.until((st) => st.heartbeats.length >= 3, "two heartbeats after catching up");
      expect(s.events).toEqual([]);
      const [seq] = await publish(server, [jsonEvent({ topic: "timeout.quiet", event_id: "after-quiet" })]);
      await s.until((st) => st.events.length === 1, "the event published after the quiet");
      expect(s.events.map((e: SseEventData) => [e.seq, e.event_id])).toEqual([[seq, "after-quiet"]]);
      expect(s.ended).toBe(false);
    } finally {
      s.close();
    }
  });
});
