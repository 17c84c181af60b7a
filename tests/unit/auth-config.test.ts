import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, defaults, loadConfig } from "../../src/app/config.js";
import { tempDir } from "../support/server.js";

const dir = tempDir("tally-auth-config-");
const secret = "config-test-secret-0123456789";

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert], {
    stdio: "ignore",
  });
  return { cert, key };
}

function configError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("security and limit settings", () => {
  it("are off or at their defaults when not given", () => {
    expect(loadConfig([], {})).toMatchObject({ accessList: null, tls: null, maxConnections: defaults.maxConnections, idleTimeoutMs: 65_000, requestTimeoutMs: 300_000 });
  });

  it("read the limits from flags and env", () => {
    expect(loadConfig(["--max-connections", "10", "--idle-timeout-ms", "1000", "--request-timeout-ms", "2000"], {})).toMatchObject({
      maxConnections: 10,
      idleTimeoutMs: 1000,
      requestTimeoutMs: 2000,
    });
    expect(loadConfig([], { TALLY_MAX_CONNECTIONS: "7", TALLY_IDLE_TIMEOUT_MS: "500", TALLY_REQUEST_TIMEOUT_MS: "600" })).toMatchObject({
      maxConnections: 7,
      idleTimeoutMs: 500,
      requestTimeoutMs: 600,
    });
    expect(configError(["--max-connections", "0"])).toMatch(/between 1 and/);
  });

  it("load the token file from --auth-tokens or TALLY_AUTH_TOKENS", () => {
    const path = file("tokens.json", JSON.stringify([{ name: "ingest", token: secret, roles: ["publish"] }]));
    expect(loadConfig(["--auth-tokens", path], {}).accessList?.size).toBe(1);
    expect(loadConfig([], { TALLY_AUTH_TOKENS: path }).accessList?.authenticate(`Bearer ${secret}`).name).toBe("ingest");
  });

  it("refuse an unreadable or invalid token file with its path and the reason, never the token", () => {
    expect(configError(["--auth-tokens", join(dir, "missing.json")])).toMatch(/--auth-tokens .*missing\.json: cannot be read: ENOENT/);
    const bad = file("bad.json", JSON.stringify([{ name: "ingest", token: secret, roles: ["admin"] }]));
    const message = configError(["--auth-tokens", bad]);
    expect(message).toMatch(/bad\.json: entries\[0\] \("ingest"\)\.roles: "admin" is not a role/);
    expect(message).not.toContain(secret);
  });

  it("take --tls-cert and --tls-key together, and check that the key fits the certificate", () => {
    const one = selfSigned("one");
    const two = selfSigned("two");
    const tls = loadConfig(["--tls-cert", one.cert, "--tls-key", one.key], {}).tls;
    expect(tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect(loadConfig([], { TALLY_TLS_CERT: one.cert, TALLY_TLS_KEY: one.key }).tls).not.toBeNull();
    expect(configError(["--tls-cert", one.cert])).toMatch(/--tls-cert and --tls-key go together/);
    expect(configError([], { TALLY_TLS_KEY: one.key })).toMatch(/go together/);
    expect(configError(["--tls-cert", one.cert, "--tls-key", two.key])).toMatch(/cannot be used/);
    expect(configError(["--tls-cert", one.key, "--tls-key", one.key])).toMatch(/cannot be used/);
  });
});
