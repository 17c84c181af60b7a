/**
 * Lines to stdout for a reader that may go away: `tally tail | head` closes
 * the pipe, and the next write fails with EPIPE. That is the reader's way of
 * saying "enough", not a failure: the commands stop as on Ctrl-C.
 */

let closed = false;
const closeListeners: (() => void)[] = [];

process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  if (closed) return;
  closed = true;
  for (const listener of closeListeners.splice(0)) listener();
});

/** Writes one line to stdout; once the reader is gone, writes nothing. */
export function writeLine(text: string): void {
  if (!closed) process.stdout.write(`${text}\n`);
}

/** Calls `listener` once stdout's reader has gone (EPIPE); right away if it already has. */
export function onStdoutClosed(listener: () => void): void {
  if (closed) listener();
  else closeListeners.push(listener);
}

/** A notice for the person at the terminal, never mixed into the output scripts read. */
export function note(text: string): void {
  process.stderr.write(`tally: ${text}\n`);
}
