import type { Interceptor } from "@connectrpc/connect";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./server.js";

/** A fresh random token secret, so finding one in the logs can only mean the server wrote it. */
export function secret(): string {
  return randomBytes(24).toString("base64url");
}

/** One entry of a --auth-tokens file. */
export interface TokenEntry {
  name: string;
  token: string;
  roles: ("publish" | "read")[];
  topics?: string[];
}

/** Writes a --auth-tokens file in a fresh directory; answers its path. */
export function writeTokenFile(entries: TokenEntry[]): string {
  const file = join(tempDir(), "tokens.json");
  writeFileSync(file, JSON.stringify(entries));
  return file;
}

/** A connect-node interceptor that sends `token` as a bearer token, as gRPC metadata and HTTP alike carry it. */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}
