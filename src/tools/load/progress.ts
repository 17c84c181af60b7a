import cliProgress from "cli-progress";

/**
 * Progress of one load run on stderr: a bar on a terminal; on anything else
 * (CI logs, files) a plain line every few seconds, since redrawn bars turn
 * into noise there.
 */

/** Redraws per second on a terminal: smooth enough, and cheap next to the load. */
const pollMs = 200;
/** One plain line this often when stderr is not a terminal. */
const plainLineMs = 5_000;

export interface ProgressHandle {
  stop(): void;
}

/** Shows `read()` against `total` until stop(). */
export function startProgress(total: number, read: () => number, label = "events"): ProgressHandle {
  const startedAt = performance.now();
  const rate = () => Math.round(read() / Math.max((performance.now() - startedAt) / 1000, 1e-3));
  if (!process.stderr.isTTY) {
    const timer = setInterval(() => process.stderr.write(`${read()}/${total} ${label}, ${rate()}/s\n`), plainLineMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
  const bar = new cliProgress.SingleBar(
    { format: `{bar} {percentage}% | {value}/{total} ${label} | {rate}/s | {duration_formatted}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { rate: 0 });
  const timer = setInterval(() => bar.update(read(), { rate: rate() }), pollMs);
  return {
    stop() {
      clearInterval(timer);
      bar.update(read(), { rate: rate() });
      bar.stop();
    },
  };
}
