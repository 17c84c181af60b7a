import { Worker } from "node:worker_threads";

/**
 * What a case measures while its attack runs: the server's memory and how a
 * well-behaved client fares. Both run on a worker thread of their own, so an
 * attack that keeps the test's main thread busy (building messages, reading
 * thousands of streams) delays neither the RSS samples nor the /health probes:
 * a slow probe then means a slow server, not a busy attacker.
 */
export interface WatchOptions {
  /** The server process. */
  pid: number;
  port: number;
  /** Local address of the well-behaved client; attackers use others. */
  probeAddress: string;
  /** A new probe starts this long after the previous one started (or at once, if it took longer). */
  probeIntervalMs: number;
  /** A probe that has not answered by then counts as this long, and as a failure. */
  probeTimeoutMs: number;
  /** How often VmRSS is read. */
  sampleIntervalMs: number;
}

export interface Watched {
  /** Highest VmRSS sampled, MiB. */
  peakRssMiB: number;
  /** VmHWM at the end, MiB: the kernel's own peak since the watch started (see resetPeak), so a spike between samples is not missed. */
  hwmMiB: number;
  /** VmRSS at the end, MiB. */
  endRssMiB: number;
  rssSamples: number;
  /** Whether the kernel's peak could be reset when the watch started; if not, hwmMiB covers the server's whole life. */
  hwmReset: boolean;
  probes: number;
  /** Slowest probe, ms; a failed or timed-out probe counts as probeTimeoutMs. */
  worstHealthMs: number;
  medianHealthMs: number;
  probeFailures: number;
  /** Why probes failed, each reason once with its count. */
  probeFailureReasons: Record<string, number>;
}

/**
 * The worker's code, as plain JavaScript evaluated by the worker (Node 20
 * cannot run a .ts file on a worker thread). It only reads /proc and makes
 * HTTP/1.1 requests.
 */
const workerSource = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const http = require("node:http");
const fs = require("node:fs");
const { pid, port, probeAddress, probeIntervalMs, probeTimeoutMs, sampleIntervalMs } = workerData;

function status() {
  try {
    const text = fs.readFileSync("/proc/" + pid + "/status", "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(text);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(text);
    return { rssKiB: rss ? Number(rss[1]) : 0, hwmKiB: hwm ? Number(hwm[1]) : 0 };
  } catch {
    return undefined; // the process has exited
  }
}

// Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so the peak
// read at the end belongs to the attack, not to the seeding before it.
let hwmReset = false;
try {
  fs.writeFileSync("/proc/" + pid + "/clear_refs", "5");
  hwmReset = true;
} catch {}

let peakKiB = 0;
let lastKiB = 0;
let lastHwmKiB = 0;
let samples = 0;
function sample() {
  const s = status();
  if (s === undefined) return;
  samples++;
  lastKiB = s.rssKiB;
  lastHwmKiB = s.hwmKiB;
  if (s.rssKiB > peakKiB) peakKiB = s.rssKiB;
}
sample();
const sampler = setInterval(sample, sampleIntervalMs);

const latencies = [];
const failures = {};
function probe() {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const done = (failure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = failure === undefined ? performance.now() - started : probeTimeoutMs;
      latencies.push(ms);
      if (failure !== undefined) failures[failure] = (failures[failure] || 0) + 1;
      req.destroy();
      resolve();
    };
    const req = http.request(
      { host: "127.0.0.1", port, path: "/health", method: "GET", localAddress: probeAddress, agent: false, headers: { connection: "close" } },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () => done(res.statusCode === 200 ? undefined : "status " + res.statusCode));
        res.on("error", (err) => done(err.code || err.message));
      },
    );
    const timer = setTimeout(() => done("timeout"), probeTimeoutMs);
    req.on("error", (err) => done(err.code || err.message));
    req.end();
  });
}

let stopping = false;
let wake = () => undefined;
async function probeLoop() {
  while (!stopping) {
    const started = performance.now();
    await probe();
    const wait = probeIntervalMs - (performance.now() - started);
    if (wait > 0 && !stopping) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
const probing = probeLoop();
parentPort.postMessage({ started: true });

parentPort.on("message", async () => {
  stopping = true;
  wake();
  await probing; // a probe in flight finishes or times out: a stall at the very end still counts
  clearInterval(sampler);
  sample();
  const sorted = latencies.slice().sort((a, b) => a - b);
  const MiB = 1024;
  parentPort.postMessage({
    peakRssMiB: Math.max(peakKiB, lastKiB) / MiB,
    hwmMiB: lastHwmKiB / MiB,
    endRssMiB: lastKiB / MiB,
    rssSamples: samples,
    hwmReset,
    probes: latencies.length,
    worstHealthMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
    medianHealthMs: sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)],
    probeFailures: Object.values(failures).reduce((a, b) => a + b, 0),
    probeFailureReasons: failures,
  });
});
`;

/** Starts watching; resolves once the worker runs, with a function that stops it and returns what it saw. */
export async function watch(options: WatchOptions): Promise<() => Promise<Watched>> {
  const worker = new Worker(workerSource, { eval: true, workerData: options });
  const failed = new Promise<never>((_, reject) => worker.once("error", reject));
  await Promise.race([new Promise((resolve) => worker.once("message", resolve)), failed]);
  return async () => {
    const result = Promise.race([new Promise<Watched>((resolve) => worker.once("message", resolve)), failed]);
    worker.postMessage("stop");
    try {
      return await result;
    } finally {
      await worker.terminate();
    }
  };
}
