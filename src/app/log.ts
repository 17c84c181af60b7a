import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.js";

/** Structured JSON logs on stdout, one object a line, ready for any log shipper. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: "tally" }, timestamp: pino.stdTimeFunctions.isoTime });
}
