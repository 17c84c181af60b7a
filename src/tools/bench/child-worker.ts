import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What every bench child process may answer besides its own messages: a failure. */
export type ChildFailure = { type: "error"; message: string };

/**
 * A bench child process (the load generator, a subscriber process) driven
 * by request and answer over IPC: one exchange at a time, a failure or the
 * child's exit rejecting the exchange in flight. Messages no exchange waits
 * for go to `onOther` (progress reports).
 */
export class ChildWorker<To, From extends { type: string }> {
  private readonly child: ChildProcess;
  private listener: ((message: From | ChildFailure) => void) | undefined;
  private exited: Error | undefined;

  constructor(
    entry: URL,
    private readonly name: string,
    options: { execArgv?: string[]; onOther?: (message: From) => boolean } = {},
  ) {
    this.child = fork(fileURLToPath(entry), [], { execArgv: options.execArgv ?? [], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (message: From) => {
      if (options.onOther?.(message) !== true) this.listener?.(message);
    });
    this.child.on("exit", (code, signal) => {
      this.exited = new Error(`${name} exited (${signal ?? code})`);
      this.listener?.({ type: "error", message: this.exited.message });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends `message` and resolves with the first answer `accept` takes (undefined: not yet). */
  exchange<T>(message: To, accept: (m: From) => T | undefined): Promise<T> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      this.listener = (m) => {
        if (m.type === "error") {
          this.listener = undefined;
          reject(new Error(`${this.name}: ${(m as ChildFailure).message}`));
          return;
        }
        const value = accept(m as From);
        if (value !== undefined) {
          this.listener = undefined;
          resolve(value);
        }
      };
      this.child.send(message as object);
    });
  }

  /** Asks the child to exit, if it still runs. */
  send(message: To): void {
    if (this.exited === undefined && this.child.connected) this.child.send(message as object);
  }
}
