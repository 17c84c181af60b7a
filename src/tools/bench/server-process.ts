import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { serverNodeFlags } from "../../app/node-flags.js";
import type { Durability } from "../../store/types.js";

/** A tally server the bench started, on a fresh database. */
export interface BenchServer {
  pid: number;
  url: string;
  /** Log lines at warn level or above, and anything on stderr: server problems the report names. */
  problems: string[];
  /** SIGTERM, then the exit code once the process has gone (0 after a clean drain). */
  stop(): Promise<number | null>;
}

/** pino's numeric level for warn: lines at or above it are problems worth reporting. */
const warnLevel = 40;

/** A server that has not said "listening" by then is not going to. */
const startTimeoutMs = 30_000;

/**
 * The server as `npm run build` leaves it (dist/src/app/main.js): the bench
 * measures that build, not a copy of its own. This file runs from
 * dist/tools/src/tools/bench/ (src/tools/tsconfig.json).
 */
const serverEntry = fileURLToPath(new URL("../../../../src/app/main.js", import.meta.url));

/** Starts the server on port 0 and resolves when its "listening" line names the port. */
export function startServer(dbPath: string, durability: Durability, extraArgs: string[] = []): Promise<BenchServer> {
  const entry = serverEntry;
  // TALLY_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=prof", profiles the server under load.
  const nodeArgs = (process.env.TALLY_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  return startListening([...serverNodeFlags, ...nodeArgs, entry, "--port", "0", "--db", dbPath, "--durability", durability, ...extraArgs]);
}

/** Starts a floor's stub (stub-server.ts) with the server's Node flags: gRPC over h2c, or REST over HTTP/1.1. */
export function startStub(protocol: "grpc" | "rest"): Promise<BenchServer> {
  return startListening([...serverNodeFlags, fileURLToPath(new URL("./stub-server.js", import.meta.url)), ...(protocol === "rest" ? ["--http1"] : [])]);
}

/** Runs node with `args` and resolves when the process logs "listening" with its port. */
function startListening(args: string[]): Promise<BenchServer> {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const problems: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on("line", (line) => problems.push(`stderr: ${line}`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within ${startTimeoutMs} ms: ${problems.join("\n")}`));
    }, startTimeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: { level?: number; msg?: string; port?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        problems.push(`stdout: ${line}`);
        return;
      }
      if ((entry.level ?? 0) >= warnLevel) problems.push(line);
      if (entry.msg === "listening" && typeof entry.port === "number") {
        clearTimeout(timer);
        resolve({
          pid: child.pid!,
          url: `http://127.0.0.1:${entry.port}`,
          problems,
          stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${problems.join("\n")}`));
    });
  });
}
