import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * CPU time and memory of a process from /proc (Linux). The server's writer
 * is a thread of the same process, so its figures include the writer.
 */

/** Clock ticks per second of utime and stime; 100 on practically every Linux. */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** One reading of a process. */
export interface ProcSample {
  /** performance.now() when read. */
  at: number;
  /** User plus system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Resident set now, and its peak since the process started (VmHWM), in KiB. */
  rssKiB: number;
  peakRssKiB: number;
  /**
   * The anonymous part of the resident set now (heaps, SQLite's page cache),
   * as opposed to file pages the kernel can drop: the part that says whether
   * memory follows the load.
   */
  anonRssKiB: number;
}

/** Reads /proc/<pid>/stat and /proc/<pid>/status; undefined once the process is gone. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return {
      at: performance.now(),
      cpuSeconds: (utime + stime) / ticksPerSecond,
      rssKiB: kib("VmRSS"),
      peakRssKiB: kib("VmHWM"),
      anonRssKiB: kib("RssAnon"),
    };
  } catch {
    return undefined;
  }
}

/** CPU used between two samples, in percent of one core (up to 200 on two cores). */
export function cpuPercent(from: ProcSample | undefined, to: ProcSample | undefined): number | undefined {
  if (from === undefined || to === undefined || to.at <= from.at) return undefined;
  return (100 * (to.cpuSeconds - from.cpuSeconds)) / ((to.at - from.at) / 1000);
}

/** The machine's CPU time from /proc/stat's first line, in clock ticks summed over every core. */
export interface HostCpuSample {
  totalTicks: number;
  /**
   * Time the hypervisor ran something else while this machine's CPUs wanted
   * to run: on a shared VM it slows every figure without any process here
   * showing it.
   */
  stealTicks: number;
}

/**
 * Parses /proc/stat's aggregate line: user nice system idle iowait irq
 * softirq steal, then guest and guest_nice, which user and nice already
 * include and so are not added again. Undefined without a steal column.
 */
export function parseHostCpu(procStat: string): HostCpuSample | undefined {
  const line = /^cpu\s+(.*)$/m.exec(procStat)?.[1];
  const ticks = line?.trim().split(/\s+/).slice(0, 8).map(Number);
  if (ticks === undefined || ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  return { totalTicks: ticks.reduce((sum, t) => sum + t, 0), stealTicks: ticks[7]! };
}

/** Reads the machine's CPU time now; undefined where /proc/stat is missing (not Linux). */
export function sampleHostCpu(): HostCpuSample | undefined {
  try {
    return parseHostCpu(readFileSync("/proc/stat", "utf8"));
  } catch {
    return undefined;
  }
}

/** The share of the machine's CPU time the hypervisor took between two samples, in percent. */
export function stealPercent(from: HostCpuSample | undefined, to: HostCpuSample | undefined): number | undefined {
  if (from === undefined || to === undefined || to.totalTicks <= from.totalTicks) return undefined;
  return (100 * (to.stealTicks - from.stealTicks)) / (to.totalTicks - from.totalTicks);
}

/** How often a running process's memory is read: often enough to catch a peak that lasts a second. */
const samplingMs = 500;

/** Reads a process's memory every half second until stop(), which answers the largest anonymous resident set seen. */
export function sampleAnonPeak(pid: number): { stop(): number | undefined } {
  let peak: number | undefined;
  const read = () => {
    const sample = sampleProcess(pid);
    if (sample !== undefined) peak = Math.max(peak ?? 0, sample.anonRssKiB);
  };
  read();
  const timer = setInterval(read, samplingMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
  };
}
