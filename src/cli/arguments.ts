import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "commander";
import { parseJsonTimestamp } from "../codec/timestamps.js";

/** Parses a seq (after_seq, a cursor): 64-bit in the proto, so a bigint, never a rounded double. */
export function seqArgument(text: string): bigint {
  if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected a seq (an integer, 0 or more), got "${text}"`);
  const value = BigInt(text.trim());
  if (value >= 2n ** 64n) throw new InvalidArgumentError(`a seq is at most 2^64-1, got ${text}`);
  return value;
}

/** A parser for a count between 1 and `max`, the bound the server would refuse beyond (so the mistake is caught here, with the flag's name). */
export function countArgument(max: number): (text: string) => number {
  return (text) => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
    const value = Number(text);
    if (value < 1 || value > max) throw new InvalidArgumentError(`must be between 1 and ${max}, got ${value}`);
    return value;
  };
}

/** Parses an RFC 3339 instant (--since), with the server's own parser, so what the CLI accepts the server accepts. */
export function timestampArgument(text: string): Timestamp {
  const ts = parseJsonTimestamp(text.trim());
  if (ts === undefined) throw new InvalidArgumentError(`expected an RFC 3339 timestamp such as 2025-10-24T10:00:00Z, got "${text}"`);
  return ts;
}
