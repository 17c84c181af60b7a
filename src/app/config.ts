import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import type { AccessList } from "../auth/access-list.js";
import { parseTokenFile } from "../auth/token-file.js";
import type { TlsMaterial } from "../http/dual-protocol-server.js";
import { heapBytesPerWireByte } from "../limits/memory-budget.js";
import type { Durability } from "../store/types.js";

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Every setting of a running server, validated and complete: nothing downstream checks for undefined. */
export interface Config {
  port: number;
  host: string;
  dbPath: string;
  durability: Durability;
  /** Events per Publish request or PublishStream message. */
  maxBatch: number;
  /** Bytes per protobuf/JSON message (Connect's readMaxBytes) and per REST body. */
  maxMessageBytes: number;
  /** Bytes of one event payload, serialized as JSON. */
  maxPayloadBytes: number;
  /** Events accepted but not yet committed, across all clients. */
  queueEvents: number;
  /** Serialized bytes of those events. */
  queueBytes: number;
  logLevel: LogLevel;
  /** How long a graceful shutdown may take before in-flight work is abandoned. */
  shutdownTimeoutMs: number;
  /** Open TCP connections, at most; at the limit a newcomer replaces the oldest connection that has not sent a request yet, or is closed. */
  maxConnections: number;
  /** A connection with no request (HTTP/1.1 keep-alive) or no open stream (HTTP/2) is closed after this long. */
  idleTimeoutMs: number;
  /** HTTP/1.1: a request must arrive whole within this time. HTTP/2: a stream on which nothing moves either way for this long is reset. */
  requestTimeoutMs: number;
  /** Open connections from one client address, at most. */
  maxConnectionsPerAddress: number;
  /** Open calls across all connections, at most: HTTP/2 streams and HTTP/1.1 requests alike. */
  maxStreams: number;
  /** Open HTTP/2 streams on one connection, at most (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /** A connection older than this is asked to go away (GOAWAY, or Connection: close); 0 for no limit. */
  maxConnectionAgeMs: number;
  /** Calls still running on a connection past its age get this long to finish before it is cut. */
  maxConnectionAgeGraceMs: number;
  /**
   * Bytes the server may hold on behalf of clients at once: request bodies and
   * their decoded messages until committed, answers being written. Spent, it
   * stops reading streams and refuses new requests with `unavailable`.
   */
  memoryBudgetBytes: number;
  /** Bytes of stored events in one Events page (rows are capped separately), so a page fits a default gRPC client's 4 MiB. */
  maxPageBytes: number;
  /** Token file given with --auth-tokens; "" when authentication is off. */
  authTokensFile: string;
  /** PEM files given with --tls-cert and --tls-key; "" when serving cleartext. */
  tlsCertFile: string;
  tlsKeyFile: string;
  /** The tokens read from authTokensFile; null when authentication is off. */
  accessList: AccessList | null;
  /** Certificate and key read from the TLS files; null when serving cleartext. */
  tls: TlsMaterial | null;
}

const MiB = 1024 * 1024;

/** The defaults, each with the reason for its value. */
export const defaults: Config = {
  port: 8080,
  /** Loopback by default: exposing the service is a decision (the Dockerfile makes it). */
  host: "127.0.0.1",
  dbPath: "./data/aggregator.db",
  /** An ack survives power loss; group commit keeps the fsync cheap. */
  durability: "full",
  /** Large enough for efficient batching, small enough that one request cannot hog the writer. */
  maxBatch: 10_000,
  /** gRPC's customary message limit. */
  maxMessageBytes: 4 * MiB,
  maxPayloadBytes: 64 * 1024,
  /**
   * A few group commits' worth: keeps the writer busy without letting memory
   * follow the load (50,000 held ~80 MiB more heap at peak for no more
   * throughput; 20,000 held ~20 MiB more than this, again for no more).
   */
  queueEvents: 10_000,
  queueBytes: 16 * MiB,
  logLevel: "info",
  /** Below the 10 s that orchestrators usually wait between SIGTERM and SIGKILL. */
  shutdownTimeoutMs: 9_000,
  /**
   * Hundreds of producers with room to spare. Each connection costs a file
   * descriptor and, at worst, its unread HTTP/2 window (16 MiB); raise it
   * with the memory and `ulimit -n` to match.
   */
  maxConnections: 1_000,
  /**
   * Longer than the 60 s idle timeout of common load balancers, so the
   * balancer closes an idle connection first and never sends a request on
   * one tally has just closed.
   */
  idleTimeoutMs: 65_000,
  /**
   * Node's own default for HTTP/1.1 requests. Long enough for a slow
   * producer's stream to pause between bursts, short enough that a stalled
   * client gives its memory back within minutes.
   */
  requestTimeoutMs: 300_000,
  /**
   * Enough for a busy fleet behind one NAT address, few enough that one
   * address cannot take all of maxConnections.
   */
  maxConnectionsPerAddress: 100,
  /**
   * An open stream costs ~10-30 KiB of session state; 2,000 of them stay well
   * inside the memory target while allowing hundreds of concurrent producers
   * and watchers.
   */
  maxStreams: 2_000,
  /** gRPC's customary recommendation (and many servers' default) for concurrent streams per connection. */
  maxStreamsPerConnection: 100,
  /**
   * Connections are rebalanced and long-lived streams (health watches, later
   * subscribers) re-established at least this often; clients reconnect on
   * GOAWAY without losing a call.
   */
  maxConnectionAgeMs: 30 * 60_000,
  maxConnectionAgeGraceMs: 30_000,
  /**
   * With ~100 MiB for Node, SQLite's page caches (40 MiB) and code, and what
   * garbage waits for the collector, this keeps every hostile load of
   * tests/abuse near 300 MiB at worst (96 MiB let 200 waiting streams reach 320-380).
   * It holds the bench's heaviest scenario many times over, but only one
   * message of the full 4 MiB at a time: raise it with the memory you give
   * the process if producers send messages that large.
   */
  memoryBudgetBytes: 64 * MiB,
  /** A quarter of a default gRPC client's 4 MiB limit: room for protobuf's own overhead over the stored JSON. */
  maxPageBytes: 1 * MiB,
  /** Authentication and TLS are opt-in: the default listens on loopback only. */
  authTokensFile: "",
  tlsCertFile: "",
  tlsKeyFile: "",
  accessList: null,
  tls: null,
};

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  help: string;
  parse: (text: string) => Config[keyof Config];
}

function integerIn(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected an integer, got "${text}"`);
    const value = Number(text);
    if (value < min || value > max) throw new InvalidArgumentError(`must be between ${min} and ${max}, got ${value}`);
    return value;
  };
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (text: string): T => {
    if (!(choices as readonly string[]).includes(text)) {
      throw new InvalidArgumentError(`must be one of ${choices.join(", ")}, got "${text}"`);
    }
    return text as T;
  };
}

function nonEmpty(text: string): string {
  if (text.trim() === "") throw new InvalidArgumentError("must not be empty");
  return text;
}

const settings: Setting[] = [
  { key: "port", flag: "--port <n>", env: "TALLY_PORT", help: "TCP port; 0 picks a free one (PORT is honoured too)", parse: integerIn(0, 65535) },
  { key: "host", flag: "--host <addr>", env: "TALLY_HOST", help: "address to listen on", parse: nonEmpty },
  { key: "dbPath", flag: "--db <path>", env: "TALLY_DB", help: "SQLite database file (its directory is created)", parse: nonEmpty },
  {
    key: "durability",
    flag: "--durability <mode>",
    env: "TALLY_DURABILITY",
    help: "full: fsync before every ack; normal: acks survive a process crash, not a power cut",
    parse: oneOf(["full", "normal"] as const),
  },
  { key: "maxBatch", flag: "--max-batch <n>", env: "TALLY_MAX_BATCH", help: "events per request or stream message", parse: integerIn(1, 1_000_000) },
  {
    key: "maxMessageBytes",
    flag: "--max-message-bytes <n>",
    env: "TALLY_MAX_MESSAGE_BYTES",
    help: "bytes per RPC message or REST body",
    parse: integerIn(1024, 1024 * MiB),
  },
  {
    key: "maxPayloadBytes",
    flag: "--max-payload-bytes <n>",
    env: "TALLY_MAX_PAYLOAD_BYTES",
    help: "bytes of one payload serialized as JSON",
    parse: integerIn(2, 64 * MiB),
  },
  { key: "queueEvents", flag: "--queue-events <n>", env: "TALLY_QUEUE_EVENTS", help: "events waiting for commit, at most", parse: integerIn(1, 10_000_000) },
  { key: "queueBytes", flag: "--queue-bytes <n>", env: "TALLY_QUEUE_BYTES", help: "bytes waiting for commit, at most", parse: integerIn(1024, 16 * 1024 * MiB) },
  { key: "logLevel", flag: "--log-level <level>", env: "TALLY_LOG_LEVEL", help: "log level", parse: oneOf(logLevels) },
  {
    key: "shutdownTimeoutMs",
    flag: "--shutdown-timeout-ms <n>",
    env: "TALLY_SHUTDOWN_TIMEOUT_MS",
    help: "graceful shutdown deadline",
    parse: integerIn(0, 600_000),
  },
  {
    key: "maxConnections",
    flag: "--max-connections <n>",
    env: "TALLY_MAX_CONNECTIONS",
    help: "open connections, at most; at the limit a newcomer replaces the oldest one that has not sent a request yet, or is closed",
    parse: integerIn(1, 1_000_000),
  },
  {
    key: "idleTimeoutMs",
    flag: "--idle-timeout-ms <n>",
    env: "TALLY_IDLE_TIMEOUT_MS",
    help: "close a connection with no request (HTTP/1.1) or no open stream (HTTP/2) after this long",
    parse: integerIn(100, 24 * 3_600_000),
  },
  {
    key: "requestTimeoutMs",
    flag: "--request-timeout-ms <n>",
    env: "TALLY_REQUEST_TIMEOUT_MS",
    help: "HTTP/1.1 request must arrive whole within this; an HTTP/2 stream idle both ways this long is reset",
    parse: integerIn(100, 24 * 3_600_000),
  },
  {
    key: "maxConnectionsPerAddress",
    flag: "--max-connections-per-address <n>",
    env: "TALLY_MAX_CONNECTIONS_PER_ADDRESS",
    help: "open connections from one client address, at most",
    parse: integerIn(1, 1_000_000),
  },
  {
    key: "maxStreams",
    flag: "--max-streams <n>",
    env: "TALLY_MAX_STREAMS",
    help: "open calls (HTTP/2 streams, HTTP/1.1 requests) in total, at most; more are answered unavailable",
    parse: integerIn(1, 1_000_000),
  },
  {
    key: "maxStreamsPerConnection",
    flag: "--max-streams-per-connection <n>",
    env: "TALLY_MAX_STREAMS_PER_CONNECTION",
    help: "open calls on one HTTP/2 connection, at most (SETTINGS_MAX_CONCURRENT_STREAMS)",
    parse: integerIn(1, 100_000),
  },
  {
    key: "maxConnectionAgeMs",
    flag: "--max-connection-age-ms <n>",
    env: "TALLY_MAX_CONNECTION_AGE_MS",
    help: "ask a connection to go away after this long; 0 for never",
    parse: integerIn(0, 30 * 24 * 3_600_000),
  },
  {
    key: "maxConnectionAgeGraceMs",
    flag: "--max-connection-age-grace-ms <n>",
    env: "TALLY_MAX_CONNECTION_AGE_GRACE_MS",
    help: "calls on an aged connection may run this much longer before it is cut",
    parse: integerIn(0, 24 * 3_600_000),
  },
  {
    key: "memoryBudgetBytes",
    flag: "--memory-budget-bytes <n>",
    env: "TALLY_MEMORY_BUDGET_BYTES",
    help: "bytes held for clients at once (bodies, decoded messages, answers); spent, the server stops reading or refuses",
    parse: integerIn(MiB, 64 * 1024 * MiB),
  },
  { key: "maxPageBytes", flag: "--max-page-bytes <n>", env: "TALLY_MAX_PAGE_BYTES", help: "bytes of stored events per Events page", parse: integerIn(1024, 1024 * MiB) },
  {
    key: "authTokensFile",
    flag: "--auth-tokens <file>",
    env: "TALLY_AUTH_TOKENS",
    help: "JSON file of bearer tokens; turns authentication on (README: Security)",
    parse: nonEmpty,
  },
  { key: "tlsCertFile", flag: "--tls-cert <file>", env: "TALLY_TLS_CERT", help: "PEM certificate chain; with --tls-key, serves TLS only", parse: nonEmpty },
  { key: "tlsKeyFile", flag: "--tls-key <file>", env: "TALLY_TLS_KEY", help: "PEM private key of --tls-cert", parse: nonEmpty },
];

/** Thrown for a bad flag or env value; main() prints the message and exits 2, no stack trace. */
export class ConfigError extends Error {}

/** Thrown when --help was asked for; the help text has already been printed. */
export class HelpShown extends Error {}

function buildCommand(helpFooter: string): Command {
  const command = new Command("tally").description("Event aggregator with durable exactly-once dedup");
  if (helpFooter !== "") command.usage("[server options]\n       tally <command> [options]").addHelpText("after", helpFooter);
  for (const s of settings) {
    const option = new Option(s.flag, `${s.help} [env ${s.env}]`).argParser(s.parse);
    // An empty default means "off"; "(default: "")" in the help would say nothing.
    if (defaults[s.key] !== "") option.default(defaults[s.key]);
    command.addOption(option);
  }
  return command.exitOverride().configureOutput({ writeErr: () => undefined });
}

/**
 * Resolves every setting: flag, else its TALLY_ env var, else (port only) PORT,
 * else the default; then checks that the values fit together, and reads and
 * checks the token and TLS files. The one place where configuration is
 * validated, so a bad file stops the server at startup (exit 2), not at the
 * first request. `helpFooter` ends --help (main.ts lists the client commands there).
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, helpFooter = ""): Config {
  const command = buildCommand(helpFooter);
  try {
    command.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError && err.code === "commander.helpDisplayed") throw new HelpShown();
    throw new ConfigError(err instanceof Error ? err.message.replace(/^error: /, "") : String(err));
  }
  const config = { ...defaults } as Record<keyof Config, unknown>;
  for (const s of settings) {
    const fromFlag = command.getOptionValueSource(optionName(s)) === "cli";
    const envText = env[s.env] ?? (s.key === "port" ? env.PORT : undefined);
    if (fromFlag) {
      config[s.key] = command.getOptionValue(optionName(s));
    } else if (envText !== undefined && envText !== "") {
      config[s.key] = parseEnv(s, envText);
    }
  }
  return loadFiles(checkConsistent(config as unknown as Config));
}

function optionName(s: Setting): string {
  return s.flag
    .split(" ")[0]!
    .replace(/^--/, "")
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseEnv(s: Setting, text: string): Config[keyof Config] {
  try {
    return s.parse(text);
  } catch (err) {
    throw new ConfigError(`${s.env}: ${(err as Error).message}`);
  }
}

function checkConsistent(config: Config): Config {
  if (config.queueEvents < config.maxBatch) {
    throw new ConfigError(`--queue-events (${config.queueEvents}) must be at least --max-batch (${config.maxBatch}): a full batch could never be queued`);
  }
  if (config.queueBytes < config.maxMessageBytes) {
    throw new ConfigError(
      `--queue-bytes (${config.queueBytes}) must be at least --max-message-bytes (${config.maxMessageBytes}): a full message could never be queued`,
    );
  }
  if (config.memoryBudgetBytes < config.maxMessageBytes * heapBytesPerWireByte) {
    throw new ConfigError(
      `--memory-budget-bytes (${config.memoryBudgetBytes}) must be at least ${heapBytesPerWireByte} × --max-message-bytes (${config.maxMessageBytes}): a full message could never be read`,
    );
  }
  if (config.maxPayloadBytes > config.maxMessageBytes) {
    throw new ConfigError(`--max-payload-bytes (${config.maxPayloadBytes}) cannot exceed --max-message-bytes (${config.maxMessageBytes})`);
  }
  return config;
}

function loadFiles(config: Config): Config {
  if (config.authTokensFile !== "") {
    const text = readConfigFile("--auth-tokens", config.authTokensFile).toString("utf8");
    try {
      config.accessList = parseTokenFile(text);
    } catch (err) {
      throw new ConfigError(`--auth-tokens ${config.authTokensFile}: ${(err as Error).message}`);
    }
  }
  if ((config.tlsCertFile === "") !== (config.tlsKeyFile === "")) {
    throw new ConfigError("--tls-cert and --tls-key go together: give both, or neither to serve cleartext");
  }
  if (config.tlsCertFile !== "") {
    const tls = { cert: readConfigFile("--tls-cert", config.tlsCertFile), key: readConfigFile("--tls-key", config.tlsKeyFile) };
    try {
      // Parses both and checks that the key belongs to the certificate, as the server will.
      createSecureContext(tls);
    } catch (err) {
      throw new ConfigError(`--tls-cert ${config.tlsCertFile} with --tls-key ${config.tlsKeyFile}: cannot be used: ${(err as Error).message}`);
    }
    config.tls = tls;
  }
  return config;
}

function readConfigFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${flag} ${path}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
