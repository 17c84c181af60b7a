/**
 * The tally CLI as users run it: the compiled entry point (the same file as
 * the server, tests/global-setup.ts builds it) as a child process against a
 * real server. Long-running commands (tail) are watched line by line and
 * stopped with a signal once the lines awaited have arrived: no sleeps, no
 * timed assertions.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverEntry, startServer, tempDir, type TestServer } from "../support/server.js";

const dir = tempDir("tally-cli-");

/** What a finished command printed, and how it exited. */
interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The test's environment without the CLI's own variables, so a developer's TALLY_TARGET or TALLY_TOKEN cannot steer the tests. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TALLY_TARGET;
  delete env.TALLY_TOKEN;
  return { ...env, ...extra };
}

/** Runs `tally ARGS` to its end, with `input` on stdin. */
function run(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  const child = spawn(process.execPath, [serverEntry, ...args], {
    env: cleanEnv(options.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A command that keeps running (tail), its stdout read line by line as it comes. */
class Running {
  readonly lines: string[] = [];
  stderr = "";
  private readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      this.lines.push(line);
      for (const wake of this.waiters.splice(0)) wake();
    });
    child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => child.once("close", (code) => resolve(code)));
    void this.exited.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Resolves once `count` lines have been printed; fails if the command exits first. */
  async waitForLines(count: number): Promise<string[]> {
    while (this.lines.length < count) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`exited with ${this.child.exitCode} after ${this.lines.length} of ${count} lines; stderr:\n${this.stderr}`);
      }
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
    return this.lines.slice(0, count);
  }

  /** Resolves once stderr holds `text`; fails if the command exits first. */
  async waitForStderr(text: string): Promise<void> {
    while (!this.stderr.includes(text)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`exited without printing "${text}"; stderr:\n${this.stderr}`);
      await new Promise<void>((wake) => {
        this.waiters.push(wake);
        this.child.stderr!.once("data", () => wake());
      });
    }
  }

  /** Sends a signal and resolves with the exit code. */
  stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}

function start(args: string[]): Running {
  return new Running(spawn(process.execPath, [serverEntry, ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] }));
}

function event(topic: string, eventId: string, payload: Record<string, unknown> = { n: 1 }): Record<string, unknown> {
  return { topic, event_id: eventId, timestamp: "2025-10-24T10:00:00Z", source: "cli-test", payload };
}

function ndjson(events: Record<string, unknown>[]): string {
  return events.map((e) => JSON.stringify(e)).join("\n") + "\n";
}

function writeInput(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function parseLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A topic no other test publishes to. */
function freshTopic(name: string): string {
  return `cli.${name}.${randomUUID().slice(0, 8)}`;
}

/** A port free right now, for a server that must come back on the same one. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

let server: TestServer;
let target: string[];

beforeAll(async () => {
  server = await startServer();
  target = ["--target", server.url];
});

afterAll(async () => {
  await server?.stop();
});

describe("tally help", () => {
  it("tally --help lists the commands and still the server's flags; each command has its own help", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const word of ["tail", "publish", "events", "stats", "consumers", "--port", "--db"]) expect(help.stdout).toContain(word);
    const tail = await run(["tail", "--help"]);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toContain("--consumer <name>");
    expect(tail.stdout).toContain("--target <url>");
  });

  it("refuses an unknown command or a bad flag with exit 2, before connecting anywhere", async () => {
    expect(await run(["serve"])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "serve"') });
    expect(await run(["tail", "--after", "x"])).toMatchObject({ code: 2, stderr: expect.stringContaining("--after") });
    expect(await run(["tail", "--topic", "a", "--topic-prefix", "b"])).toMatchObject({ code: 2 });
  });
});

describe("tally publish, events and stats", () => {
  it("publishes an NDJSON file, then events --json shows exactly those events in order", async () => {
    const topic = freshTopic("publish");
    const sent = [event(topic, "a"), event(topic, "b", { nested: { list: [1, 2] } }), event(topic, "c")];
    const file = writeInput("publish.ndjson", ndjson(sent) + "\n" + ndjson([event(topic, "a")]));

    const published = await run(["publish", file, "--batch", "2", "--json", ...target]);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout)).toEqual({ received: "4", accepted: "3", duplicates: "1", conflicts: "0", batches: "2" });

    const listed = await run(["events", "--topic", topic, "--json", ...target]);
    expect(listed.code, listed.stderr).toBe(0);
    const events = parseLines(listed.stdout.trim().split("\n"));
    expect(events.map((e) => e.event_id)).toEqual(["a", "b", "c"]);
    expect(events[1]).toMatchObject({ topic, source: "cli-test", timestamp: "2025-10-24T10:00:00Z", payload: { nested: { list: [1, 2] } } });
    const seqs = events.map((e) => BigInt(e.seq as string));
    expect(seqs[1]! > seqs[0]! && seqs[2]! > seqs[1]!).toBe(true);

    const table = await run(["events", "--topic", topic, ...target]);
    expect(table.stdout.split("\n")[0]).toMatch(/^SEQ\s+TOPIC\s+EVENT_ID\s+SOURCE\s+TIMESTAMP\s+PAYLOAD$/);
    expect(table.stdout).toContain('{"nested":{"list":[1,2]}}');
  });

  it("publishes from stdin, and a JSON array file; --all pages through everything", async () => {
    const topic = freshTopic("stdin");
    const fromStdin = await run(["publish", "-", ...target], { input: ndjson([event(topic, "s1"), event(topic, "s2")]) });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toBe("received 2, accepted 2, duplicates 0, conflicts 0, batches 1\n");
    const array = writeInput("array.json", JSON.stringify([event(topic, "j1"), event(topic, "j2"), event(topic, "j3")], null, 2));
    expect((await run(["publish", array, ...target])).code).toBe(0);

    const all = await run(["events", "--topic", topic, "--limit", "2", "--all", "--json", ...target]);
    expect(parseLines(all.stdout.trim().split("\n")).map((e) => e.event_id)).toEqual(["s1", "s2", "j1", "j2", "j3"]);
    const page = await run(["events", "--topic", topic, "--limit", "2", "--json", ...target]);
    expect(page.stdout.trim().split("\n")).toHaveLength(2);
    expect(page.stderr).toMatch(/more events may follow: add --after \d+/);
  });

  it("stats --json is the StatsResponse in proto JSON, and its counters add up", async () => {
    const topic = freshTopic("stats");
    expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "x"), event(topic, "x"), event(topic, "x", { n: 2 })]) })).code).toBe(0);
    const result = await run(["stats", "--json", "--top", "1000", ...target]);
    expect(result.code, result.stderr).toBe(0);
    const stats = JSON.parse(result.stdout) as Record<string, unknown> & { topics: { name: string; count: string }[] };
    const n = (key: string) => BigInt(stats[key] as string);
    expect(n("received")).toBe(n("unique_processed") + n("duplicate_dropped") + n("conflicts"));
    expect(n("duplicate_dropped") >= 1n && n("conflicts") >= 1n).toBe(true);
    expect(stats.topics).toContainEqual({ name: topic, count: "1" });

    const human = await run(["stats", ...target]);
    expect(human.stdout).toMatch(/^received\s+\d+$/m);
    expect(human.stdout).toMatch(/^TOPIC\s+EVENTS$/m);
  });

  it("bad input exits 2 naming each bad line, and sends nothing", async () => {
    const topic = freshTopic("bad");
    const file = writeInput("bad.ndjson", [JSON.stringify(event(topic, "ok")), '{"topic": "x", oops', JSON.stringify({ ...event(topic, "no-source"), source: "" }), ""].join("\n"));
    const result = await run(["publish", file, ...target]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("2 invalid events, nothing sent");
    expect(result.stderr).toMatch(/line 2: not JSON/);
    expect(result.stderr).toContain("line 3: source: is required");
    const listed = await run(["events", "--topic", topic, "--json", ...target]);
    expect(listed.stdout).toBe("");
  });

  it("a refusal by the server's own limits names the input line of the refused event; the batches before it are stored", async () => {
    const topic = freshTopic("too-big");
    // 64 KiB is the server's default payload limit, which only the server knows: the CLI cannot check it ahead.
    const events = [event(topic, "e1"), event(topic, "e2"), event(topic, "big", { text: "x".repeat(70_000) }), event(topic, "e4")];
    const result = await run(["publish", writeInput("big.ndjson", ndjson(events)), "--batch", "1", ...target]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tally: invalid_argument: /);
    expect(result.stderr).toMatch(/line 3: payload: is \d+ bytes as JSON, at most 65536 allowed/);
    const stored = await run(["events", "--topic", topic, "--json", ...target]);
    expect(parseLines(stored.stdout.trim().split("\n")).map((e) => e.event_id)).toEqual(["e1", "e2"]);
  });

  it("an unreachable server is `unavailable`, exit 1", async () => {
    const port = await freePort();
    const result = await run(["stats", "--target", `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tally: unavailable: /);
  });
});

describe("tally tail", () => {
  it("tail --json --after 0 prints the stored events, then one published later, and exits 0 on Ctrl-C", async () => {
    const topic = freshTopic("tail");
    expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "t1"), event(topic, "t2")]) })).code).toBe(0);
    const tail = start(["tail", "--topic", topic, "--after", "0", "--json", ...target]);
    try {
      expect(parseLines(await tail.waitForLines(2)).map((e) => e.event_id)).toEqual(["t1", "t2"]);
      expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "t3")]) })).code).toBe(0);
      const lines = parseLines(await tail.waitForLines(3));
      expect(lines[2]).toMatchObject({ topic, event_id: "t3", source: "cli-test", payload: { n: 1 } });
    } finally {
      expect(await tail.stop("SIGINT")).toBe(0);
    }
    expect(tail.lines).toHaveLength(3);
  });

  it("prints a readable line per event without --json", async () => {
    const topic = freshTopic("human");
    expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "h 1", { a: "b" })]) })).code).toBe(0);
    const tail = start(["tail", "--topic", topic, ...target]);
    try {
      const [line] = await tail.waitForLines(1);
      expect(line).toMatch(new RegExp(`^\\d+ ${topic.replace(/\./g, "\\.")} "h 1" cli-test 2025-10-24T10:00:00Z \\{"a":"b"\\}$`));
    } finally {
      expect(await tail.stop("SIGTERM")).toBe(0);
    }
  });

  it("tail --consumer acks what it printed, so the next tail of that consumer resumes right after it", async () => {
    const topic = freshTopic("consumer");
    const consumer = `cli-${randomUUID().slice(0, 8)}`;
    expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "c1"), event(topic, "c2"), event(topic, "c3")]) })).code).toBe(0);

    const first = start(["tail", "--topic", topic, "--consumer", consumer, "--json", ...target]);
    let printed: Record<string, unknown>[];
    try {
      printed = parseLines(await first.waitForLines(3));
    } finally {
      expect(await first.stop("SIGINT")).toBe(0);
    }
    expect(printed.map((e) => e.event_id)).toEqual(["c1", "c2", "c3"]);

    // The ack on exit is durable once answered: the consumer stands at the last seq printed.
    const listed = await run(["consumers", "--json", ...target]);
    const info = parseLines(listed.stdout.trim().split("\n")).find((c) => c.name === consumer);
    expect(info).toMatchObject({ topic, acked_seq: printed[2]!.seq, subscribers: 0 });

    expect((await run(["publish", "-", ...target], { input: ndjson([event(topic, "c4"), event(topic, "c5")]) })).code).toBe(0);
    const second = start(["tail", "--topic", topic, "--consumer", consumer, "--json", ...target]);
    try {
      expect(parseLines(await second.waitForLines(2)).map((e) => e.event_id)).toEqual(["c4", "c5"]);
    } finally {
      expect(await second.stop("SIGINT")).toBe(0);
    }
    expect(second.lines).toHaveLength(2);

    const table = await run(["consumers", ...target]);
    expect(table.stdout).toMatch(new RegExp(`^${consumer}\\s+--topic ${topic.replace(/\./g, "\\.")}\\s+\\d+\\s+0\\s+0\\s`, "m"));
    const deleted = await run(["consumers", "delete", consumer, ...target]);
    expect(deleted).toMatchObject({ code: 0, stdout: expect.stringContaining(`deleted consumer ${consumer}`) });
    expect(await run(["consumers", "delete", consumer, ...target])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^tally: not_found: /) });
  });

  it("tail reconnects when the server restarts and resumes after the last event it printed: nothing twice, nothing missed", async () => {
    const port = await freePort();
    const dbPath = join(tempDir(), "restart.db");
    let own = await startServer({ dbPath, args: ["--port", String(port)] });
    const ownTarget = ["--target", own.url];
    const topic = freshTopic("restart");
    expect((await run(["publish", "-", ...ownTarget], { input: ndjson([event(topic, "r1"), event(topic, "r2")]) })).code).toBe(0);

    const tail = start(["tail", "--topic", topic, "--json", "--verbose", ...ownTarget]);
    try {
      await tail.waitForLines(2);
      expect(await own.stop("SIGTERM")).toBe(0);
      await tail.waitForStderr("reconnecting");
      own = await startServer({ dbPath, args: ["--port", String(port)] });
      expect((await run(["publish", "-", ...ownTarget], { input: ndjson([event(topic, "r3")]) })).code).toBe(0);
      await tail.waitForLines(3);
    } finally {
      expect(await tail.stop("SIGINT")).toBe(0);
      await own.stop();
    }
    expect(parseLines(tail.lines).map((e) => e.event_id)).toEqual(["r1", "r2", "r3"]);
  });

  it("a refused subscription prints the code and message and exits 1", async () => {
    const result = await run(["tail", "--consumer", "bad name!", ...target]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tally: invalid_argument: .*consumer/);
  });
});

describe("tally with a token, over TLS", () => {
  let secure: TestServer;
  const readerToken = randomBytes(24).toString("base64url");
  const publisherToken = randomBytes(24).toString("base64url");
  let secureTarget: string[];

  let caFile: string;

  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1, valid for a day, trusted only through --ca.
    caFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        .concat(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", keyFile, "-out", caFile]),
      { stdio: "ignore" },
    );
    const tokens = join(dir, "tokens.json");
    writeFileSync(
      tokens,
      JSON.stringify([
        { name: "reader", token: readerToken, roles: ["read"] },
        { name: "publisher", token: publisherToken, roles: ["publish", "read"] },
      ]),
    );
    secure = await startServer({ args: ["--auth-tokens", tokens, "--tls-cert", caFile, "--tls-key", join(dir, "key.pem")] });
    secureTarget = ["--target", `https://127.0.0.1:${secure.port}`, "--ca", caFile];
  });
  afterAll(async () => {
    await secure?.stop();
  });

  it("sends --token (or TALLY_TOKEN) as a bearer token; a refusal is printed as its code and message, exit 1", async () => {
    const input = ndjson([event("orders", "tok-1")]);
    expect(await run(["publish", "-", ...secureTarget], { input })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^tally: unauthenticated: /) });
    const denied = await run(["publish", "-", "--token", readerToken, ...secureTarget], { input });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^tally: permission_denied: token "reader" lacks the "publish" role/);
    expect(await run(["publish", "-", ...secureTarget], { input, env: { TALLY_TOKEN: publisherToken } })).toMatchObject({ code: 0 });
    const listed = await run(["events", "--json", ...secureTarget], { env: { TALLY_TOKEN: readerToken } });
    expect(parseLines(listed.stdout.trim().split("\n")).map((e) => e.event_id)).toEqual(["tok-1"]);
  });

  it("trusts an https:// target's certificate only through --ca (or, for testing, --insecure)", async () => {
    const https = ["--target", `https://127.0.0.1:${secure.port}`, "--token", readerToken];
    const untrusted = await run(["stats", ...https]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^tally: \w+: self-signed certificate \(trust the server's certificate with --ca <file>\)/);
    expect((await run(["stats", ...https, "--ca", caFile])).code).toBe(0);
    expect((await run(["stats", ...https, "--insecure"])).code).toBe(0);
  });
});
