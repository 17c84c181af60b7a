import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { serverEntry, startServer, tempDir, type StartOptions, type TestServer } from "../support/server.js";
import { watch, type Watched } from "./watcher.js";

/**
 * The abuse suite's frame (issue "Bounded under abuse"): each case runs a real
 * attacker against a real server process and measures, while the attack
 * runs, the server's peak RSS and the worst latency of GET /health made by a
 * well-behaved client. See tests/abuse/README.md.
 */

/** Which build to attack: TALLY_ABUSE_SERVER names another compiled main.js (an older build, to measure it the same way). */
export const abuseEntry = process.env.TALLY_ABUSE_SERVER ?? serverEntry;

/** TALLY_ABUSE_LONG=1: bigger volumes, longer attacks. */
export const long = process.env.TALLY_ABUSE_LONG === "1";

/** The short form's value, or the long form's. */
export function scale<T>(short: T, longForm: T): T {
  return long ? longForm : short;
}

function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${text}"`);
  return value;
}

/** The bounds every case is held to; the defaults are the goal after the fixes. */
export const bounds = {
  maxRssMiB: envNumber("TALLY_ABUSE_MAX_RSS_MIB", 384),
  maxHealthMs: envNumber("TALLY_ABUSE_MAX_HEALTH_MS", 2_000),
};

/** How long one attack holds (short form seconds, long form seconds), as ms. */
export function holdMs(shortSeconds: number, longSeconds: number): number {
  return scale(shortSeconds, longSeconds) * 1000;
}

/** Per-case test timeout: generous, the attack's own duration plus setup and a stalled server's probe timeouts. */
export function caseTimeoutMs(shortSeconds: number, longSeconds = shortSeconds * 10): number {
  return scale(shortSeconds, longSeconds) * 1000;
}

/** The well-behaved client's address. */
export const probeAddress = "127.0.0.1";

/**
 * The n-th attacker address (0-based): 127.0.0.2, 127.0.0.3, ... 127.0.0.251,
 * then 127.0.1.2 and on. All of 127/8 is local on Linux, so attackers look
 * like many clients, and a per-address connection limit leaves the probe alone.
 */
export function attackerAddress(n: number): string {
  return `127.0.${Math.floor(n / 250)}.${2 + (n % 250)}`;
}

/** Address of the i-th attacking connection when each address holds at most perAddress connections. */
export function addressOf(connection: number, perAddress: number): string {
  return attackerAddress(Math.floor(connection / perAddress));
}

/** Starts the server under test (TALLY_ABUSE_SERVER or this checkout's build). Only flags both old and new builds know. */
export function startAbuseServer(options: StartOptions = {}): Promise<TestServer> {
  return startServer({ ...options, entry: abuseEntry });
}

/** Ends the server at once: the cases measure attacks, not shutdowns. */
export async function stopServer(server: TestServer | undefined): Promise<void> {
  if (server === undefined) return;
  await server.stop("SIGKILL");
}

/** Flags that turn authentication on with these tokens, written to a tokens file of the case's own. */
export function authTokensArgs(tokens: { name: string; token: string; roles: string[]; topics?: string[] }[]): string[] {
  const file = join(tempDir(), "tokens.json");
  writeFileSync(file, JSON.stringify(tokens));
  return ["--auth-tokens", file];
}

export interface CaseOptions {
  /** The server's flags; a function when they name a file to be made as the case starts (authTokensArgs). */
  args?: string[] | (() => string[]);
  /** The test's timeout, ms: caseTimeoutMs(short, long). */
  timeout: number;
  /** false: the figures are reported, not held to the bounds (cases about what the server answers, not what that costs). */
  bounded?: false;
}

/**
 * One case as a test: starts a server with the case's flags, runs `run` on it
 * (preparation, then runCase), holds its figures to the common bounds, then
 * checks the case's own expectations on its facts. The server is killed
 * however the case ends.
 */
export function abuseCase<F extends Facts>(
  title: string,
  options: CaseOptions,
  run: (server: TestServer) => Promise<{ figures: Figures; facts: F }>,
  expectations?: (facts: F) => void,
): void {
  it(
    title,
    async () => {
      const args = typeof options.args === "function" ? options.args() : options.args;
      const server = await startAbuseServer(args === undefined ? {} : { args });
      try {
        const { figures, facts } = await run(server);
        if (options.bounded !== false) expectBounded(figures);
        expectations?.(facts);
      } finally {
        await stopServer(server);
      }
    },
    options.timeout,
  );
}

/** What an attacker holds open: a socket, an HTTP/2 session, a raw HTTP/2 connection. */
interface Destroyable {
  destroy(): unknown;
}

/**
 * The connections one attack holds, all destroyed when it lets go: when the
 * attack ends, however it ends (runCase sees to it), or earlier if the attack
 * says so. `released` turns true before any is destroyed, so that close
 * handlers can tell the attacker letting go from the server cutting it off.
 */
export class Attackers {
  released = false;
  private readonly held: Destroyable[] = [];

  /** Holds `connection` until the release; returns it. */
  add<C extends Destroyable>(connection: C): C {
    this.held.push(connection);
    return connection;
  }

  /** `count` connections, the c-th made by `connect` from attackerAddress(c). */
  open<C extends Destroyable>(count: number, connect: (address: string, c: number) => C): C[] {
    return Array.from({ length: count }, (_, c) => this.add(connect(attackerAddress(c), c)));
  }

  /** Lets go of every connection (again, if the attack already did: destroying twice does nothing). */
  release(): void {
    this.released = true;
    for (const connection of this.held) connection.destroy();
  }
}

/** What a case found besides the common figures: counts, sizes, statuses. */
export type Facts = Record<string, unknown>;

/** One case's figures: one JSON line in TALLY_ABUSE_REPORT. */
export interface Figures {
  case: string;
  form: "short" | "long";
  /** The entry point that was attacked. */
  server: string;
  /** The higher of the sampled VmRSS peak and VmHWM (when VmHWM could be reset at the start), MiB. */
  peakRssMiB: number;
  sampledPeakRssMiB: number;
  hwmMiB: number;
  endRssMiB: number;
  worstHealthMs: number;
  medianHealthMs: number;
  probes: number;
  probeFailures: number;
  probeFailureReasons: Record<string, number>;
  /** How the server process ended during the case, if it did ("exit 1", "SIGKILL"); null while it runs. */
  serverDied: string | null;
  /** Wall time of the measured attack. */
  attackMs: number;
  facts: Facts;
  at: string;
}

/** Measurements of one attack, before its facts are added. */
export interface Measured extends Watched {
  attackMs: number;
  serverDied: string | null;
}

function died(server: TestServer): string | null {
  const child = server.process;
  if (child.signalCode !== null) return child.signalCode;
  if (child.exitCode !== null) return `exit ${child.exitCode}`;
  return null;
}

/**
 * Runs an attack while watching the server: RSS every 50 ms, VmHWM at the end,
 * and GET /health from 127.0.0.1 every 100 ms (10 s timeout). Resolves, after
 * a probe still in flight has finished, with the attack's outcome (what it
 * returned, or how it failed) and the measurements.
 */
export async function measure<T>(server: TestServer, attack: () => Promise<T>): Promise<{ outcome: PromiseSettledResult<T>; measured: Measured }> {
  const stop = await watch({
    pid: server.process.pid!,
    port: server.port,
    probeAddress,
    probeIntervalMs: 100,
    probeTimeoutMs: envNumber("TALLY_ABUSE_PROBE_TIMEOUT_MS", 10_000),
    sampleIntervalMs: 50,
  });
  const started = performance.now();
  const [outcome] = await Promise.allSettled([attack()]);
  const attackMs = performance.now() - started;
  const watched = await stop();
  return { outcome: outcome!, measured: { ...watched, attackMs, serverDied: died(server) } };
}

/**
 * One case: measures the attack, then reports its figures and facts (also
 * when the attack itself failed: its error becomes a fact, then is thrown).
 * The connections the attack puts in its Attackers are destroyed as it ends,
 * inside the measurement, as an attacker's own cleanup would be.
 */
export async function runCase<F extends Facts>(caseName: string, server: TestServer, attack: (attackers: Attackers) => Promise<F>): Promise<{ figures: Figures; facts: F }> {
  const { outcome, measured } = await measure(server, async () => {
    const attackers = new Attackers();
    try {
      return await attack(attackers);
    } finally {
      attackers.release();
    }
  });
  if (outcome.status === "rejected") {
    report(caseName, measured, { attackError: String((outcome.reason as Error)?.stack ?? outcome.reason) });
    throw outcome.reason;
  }
  return { figures: report(caseName, measured, outcome.value), facts: outcome.value };
}

/** How many times each value occurs, in the order values first occur: a fact's breakdown. */
export function tally(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Writes a case's figures, before anything is asserted, so a failing case is
 * still on record: one JSON line appended to TALLY_ABUSE_REPORT (if set) and a
 * one-line summary on stdout.
 */
export function report(caseName: string, measured: Measured, facts: Facts): Figures {
  const figures: Figures = {
    case: caseName,
    form: long ? "long" : "short",
    server: abuseEntry,
    peakRssMiB: round(measured.hwmReset ? Math.max(measured.peakRssMiB, measured.hwmMiB) : measured.peakRssMiB),
    sampledPeakRssMiB: round(measured.peakRssMiB),
    hwmMiB: round(measured.hwmMiB),
    endRssMiB: round(measured.endRssMiB),
    worstHealthMs: Math.round(measured.worstHealthMs),
    medianHealthMs: Math.round(measured.medianHealthMs),
    probes: measured.probes,
    probeFailures: measured.probeFailures,
    probeFailureReasons: measured.probeFailureReasons,
    serverDied: measured.serverDied,
    attackMs: Math.round(measured.attackMs),
    facts,
    at: new Date().toISOString(),
  };
  const file = process.env.TALLY_ABUSE_REPORT;
  if (file !== undefined && file !== "") appendFileSync(file, `${JSON.stringify(figures)}\n`);
  reported.push(figures);
  console.log(summaryLine(figures));
  return figures;
}

/** Every case reported by this test process, in order. */
export const reported: Figures[] = [];

function summaryLine(f: Figures): string {
  const failures = f.probeFailures === 0 ? "0 failed" : `${f.probeFailures} failed (${Object.entries(f.probeFailureReasons).map(([why, n]) => `${why} ×${n}`).join(", ")})`;
  return `[abuse] ${f.case}: peak RSS ${f.peakRssMiB} MiB, worst /health ${f.worstHealthMs} ms over ${f.probes} probes, ${failures}${f.serverDied === null ? "" : `, SERVER DIED (${f.serverDied})`} | ${factsText(f.facts)}`;
}

/** Facts as "name=value" pairs; a fact named "details" stays in the JSON line only. */
function factsText(facts: Facts): string {
  return Object.entries(facts)
    .filter(([name]) => name !== "details")
    .map(([name, value]) => `${name}=${typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)}`)
    .join(", ");
}

/** Figures as a markdown table: case | peak RSS MiB | worst /health ms | probe failures | facts. */
export function markdownTable(rows: Figures[]): string {
  const escape = (text: string) => text.replace(/\|/g, "\\|");
  return [
    "| case | peak RSS MiB | worst /health ms | probe failures | facts |",
    "|---|---:|---:|---:|---|",
    ...rows.map(
      (f) =>
        `| ${f.case} | ${f.peakRssMiB} | ${f.worstHealthMs} | ${f.probeFailures}/${f.probes} | ${escape(`${f.serverDied === null ? "" : `server died: ${f.serverDied}; `}${factsText(f.facts)}`)} |`,
    ),
  ].join("\n");
}

/** Prints a report file (TALLY_ABUSE_REPORT's JSON lines) as a markdown table. */
export function printTable(reportFile: string): void {
  const rows = readFileSync(reportFile, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Figures);
  console.log(markdownTable(rows));
}

/**
 * The bounds every case shares: peak RSS, every probe answered 200, the worst
 * probe, and the server still running. Soft, so one failing case lists every
 * bound it crossed.
 */
export function expectBounded(f: Figures): void {
  expect.soft(f.serverDied, "the server process died during the attack").toBeNull();
  expect.soft(f.peakRssMiB, `peak RSS (MiB) above TALLY_ABUSE_MAX_RSS_MIB`).toBeLessThan(bounds.maxRssMiB);
  expect.soft(f.probeFailureReasons, "every /health probe answered 200").toEqual({});
  expect.soft(f.worstHealthMs, `worst /health latency (ms) above TALLY_ABUSE_MAX_HEALTH_MS`).toBeLessThan(bounds.maxHealthMs);
}
