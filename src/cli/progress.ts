import cliProgress from "cli-progress";

/** A running count shown to the person at the terminal. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * A bar on stderr when stderr is a terminal, so stdout stays the summary a
 * script reads; nothing otherwise, where a redrawn bar is only noise (the
 * caller prints one plain line at the end). Without a total (stdin) it
 * counts without a bar.
 */
export function startProgress(label: string, total: number | undefined): Progress {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const startedAt = performance.now();
  const format =
    total === undefined
      ? `{value} ${label} | {rate}/s | {duration_formatted}`
      : `{bar} {percentage}% | {value}/{total} ${label} | {rate}/s | {duration_formatted}`;
  const bar = new cliProgress.SingleBar({ format, hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  bar.start(total ?? 0, 0, { rate: 0 });
  let last = 0;
  const rate = () => Math.round(last / Math.max((performance.now() - startedAt) / 1000, 1e-3));
  return {
    update(done) {
      last = done;
      bar.update(done, { rate: rate() });
    },
    stop() {
      bar.update(last, { rate: rate() });
      bar.stop();
    },
  };
}
