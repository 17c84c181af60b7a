import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** How hard a commit is pushed to disk before the ack; see README "What an ack guarantees". */
export type Durability = "full" | "normal";

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
  /** A few group commits' worth: keeps the writer busy without letting memory follow the load. */
  queueEvents: 50_000,
  queueBytes: 32 * MiB,
  logLevel: "info",
  /** Below the 10 s that orchestrators usually wait between SIGTERM and SIGKILL. */
  shutdownTimeoutMs: 9_000,
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
];

/** Thrown for a bad flag or env value; main() prints the message and exits 2, no stack trace. */
export class ConfigError extends Error {}

/** Thrown when --help was asked for; the help text has already been printed. */
export class HelpShown extends Error {}

function buildCommand(): Command {
  const command = new Command("tally").description("Event aggregator with durable exactly-once dedup");
  for (const s of settings) {
    command.addOption(new Option(s.flag, `${s.help} [env ${s.env}]`).default(defaults[s.key]).argParser(s.parse));
  }
  return command.exitOverride().configureOutput({ writeErr: () => undefined });
}

/**
 * Resolves every setting: flag, else its TALLY_ env var, else (port only) PORT,
 * else the default; then checks that the values fit together. The one place
 * where configuration is validated.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const command = buildCommand();
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
  return checkConsistent(config as unknown as Config);
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
  if (config.maxPayloadBytes > config.maxMessageBytes) {
    throw new ConfigError(`--max-payload-bytes (${config.maxPayloadBytes}) cannot exceed --max-message-bytes (${config.maxMessageBytes})`);
  }
  return config;
}
