import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { serverNodeFlags } from "../../src/app/node-flags.js";
import { fileURLToPath } from "node:url";

/** The compiled server entry point; tests/global-setup.ts builds it before any test runs. */
export const serverEntry = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "src", "app", "main.js");

/** A real tally server process on a real port with a real SQLite file. */
export interface TestServer {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  dbPath: string;
  process: ChildProcess;
  /** Every log line so far (pino JSON). */
  logs: string[];
  /** Sends a signal and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Names the run's scratch directory (tests/global-setup.ts); test processes inherit it. */
export const scratchEnv = "TALLY_TEST_SCRATCH";

/** A fresh directory for a test's database, inside the run's scratch directory. */
export function tempDir(prefix = "tally-test-"): string {
  return mkdtempSync(join(process.env[scratchEnv] ?? tmpdir(), prefix));
}

/** Flags for the message limits a test runs with, so the test and the server agree on them. */
export function limitArgs(limits: { maxBatch: number; maxMessageBytes: number; maxPayloadBytes: number }): string[] {
  return ["--max-batch", String(limits.maxBatch), "--max-message-bytes", String(limits.maxMessageBytes), "--max-payload-bytes", String(limits.maxPayloadBytes)];
}

export interface StartOptions {
  dbPath?: string;
  /** The compiled entry point to run instead of this checkout's (serverEntry): another build of the server, to compare. */
  entry?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Spawns the server on port 0 and resolves when its "listening" log line names the port. */
export function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dbPath = options.dbPath ?? join(tempDir(), "aggregator.db");
  const child = spawn(process.execPath, [...serverNodeFlags, options.entry ?? serverEntry, "--port", "0", "--db", dbPath, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logs.push(line);
      let entry: { msg?: string; port?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg === "listening" && typeof entry.port === "number") {
        const port = entry.port;
        resolve({
          port,
          url: `http://127.0.0.1:${port}`,
          dbPath,
          process: child,
          logs,
          stop(signal: NodeJS.Signals = "SIGTERM") {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${logs.join("\n")}`)));
  });
}
