import cliProgress from "cli-progress";

/**
 * The bench's progress on stderr: on a terminal, two cli-progress bars (the
 * whole plan, and the scenario running); otherwise one plain line as each
 * scenario starts and ends, which reads well in CI logs and files.
 */
export interface BenchProgress {
  /** A scenario starts: `index` of `count` in the whole plan. */
  begin(name: string, index: number, count: number): void;
  /** Events acknowledged so far in the running scenario. */
  advance(done: number, total: number): void;
  /** The scenario ended with this one-line summary. */
  end(summary: string): void;
  /** A line that must be seen (failures), printed above the bars. */
  log(line: string): void;
  stop(): void;
}

/** Without a terminal, a long scenario (growth takes many minutes) says how far it got this often. */
const plainProgressMs = 30_000;

export function benchProgress(): BenchProgress {
  if (!process.stderr.isTTY) {
    let lastLine = 0;
    return {
      begin: (name, index, count) => {
        lastLine = performance.now();
        process.stderr.write(`[${index + 1}/${count}] ${name} ...\n`);
      },
      advance: (done, total) => {
        if (performance.now() - lastLine < plainProgressMs) return;
        lastLine = performance.now();
        process.stderr.write(`      ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} events sent\n`);
      },
      end: (summary) => process.stderr.write(`      ${summary}\n`),
      log: (line) => process.stderr.write(`${line}\n`),
      stop: () => undefined,
    };
  }
  const bars = new cliProgress.MultiBar(
    { format: "{label} {bar} {percentage}% | {value}/{total} {unit}", hideCursor: true, clearOnComplete: false, autopadding: true },
    cliProgress.Presets.shades_classic,
  );
  let plan: cliProgress.SingleBar | undefined;
  let current: cliProgress.SingleBar | undefined;
  return {
    begin(name, index, count) {
      plan ??= bars.create(count, 0, { label: "bench".padEnd(36), unit: "scenarios" });
      plan.update(index);
      current ??= bars.create(1, 0, { label: "scenario", unit: "events" });
      current.setTotal(1);
      current.update(0, { label: name.padEnd(36).slice(0, 36) });
    },
    advance(done, total) {
      current?.setTotal(Math.max(total, 1));
      current?.update(done);
    },
    end(summary) {
      bars.log(`${summary}\n`);
      plan?.increment();
    },
    log(line) {
      bars.log(`${line}\n`);
    },
    stop() {
      bars.stop();
    },
  };
}
