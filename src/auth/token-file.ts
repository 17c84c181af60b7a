import { createHash } from "node:crypto";
import { AccessList, roles, type Role, type TokenEntry } from "./access-list.js";

/**
 * The token file (--auth-tokens) is a JSON array, one object per token:
 *
 *   [{"name": "ingest", "token": "…", "roles": ["publish"], "topics": ["orders.", "billing."]},
 *    {"name": "dashboard", "token": "…", "roles": ["read"]}]
 *
 * `topics` is optional (every topic when left out). See README "Security".
 */
export class TokenFileError extends Error {}

/** Short tokens can be guessed; 16 characters of base64 are 96 bits. */
const minTokenLength = 16;

/** Well under the 16 KiB header limit, so a valid token always fits in a request. */
const maxTokenLength = 4096;

/** Topic names are at most 255 characters (codec/validate.ts), so a longer prefix could never match. */
const maxTopicLength = 255;

/** Characters of an RFC 6750 bearer token (b64token), so every token can travel in an HTTP header. */
const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Names appear in logs and error messages: plain words only. */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

const fields = ["name", "token", "roles", "topics"];

/**
 * Parses and validates the token file's text into an AccessList, or throws a
 * TokenFileError naming the entry and field. Messages never quote a token,
 * nor the file's text (a JSON syntax error is reported by position only).
 */
export function parseTokenFile(text: string): AccessList {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TokenFileError(`not valid JSON: ${describeSyntaxError(text, (err as Error).message)}`);
  }
  if (!Array.isArray(parsed)) throw new TokenFileError('expected a JSON array of {"name", "token", "roles", "topics"} objects');
  if (parsed.length === 0) throw new TokenFileError("has no tokens: every request would be refused");

  const names = new Set<string>();
  const digests = new Map<string, string>();
  const entries = parsed.map((item: unknown, index): TokenEntry => {
    const entry = entryChecker(index, item);
    const name = entry.name();
    if (names.has(name)) entry.fail("name", `"${name}" is used by an earlier entry; names must be unique`);
    names.add(name);
    const token = entry.token();
    const hash = createHash("sha256").update(token).digest("hex");
    const earlier = digests.get(hash);
    if (earlier !== undefined) entry.fail("token", `is the same as the token of "${earlier}"; each token must be unique`);
    digests.set(hash, name);
    return { token, grant: { name, roles: entry.roles(), topics: entry.topics() } };
  });
  return new AccessList(entries);
}

function entryChecker(index: number, item: unknown) {
  let label = `entries[${index}]`;
  const fail = (field: string, problem: string): never => {
    throw new TokenFileError(`${label}.${field}: ${problem}`);
  };
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new TokenFileError(`${label}: must be an object with "name", "token", "roles" and optionally "topics"`);
  }
  const record = item as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!fields.includes(key)) fail(key, `unknown field (allowed: ${fields.join(", ")})`);
  }

  return {
    fail,
    name(): string {
      const name = record.name;
      if (typeof name !== "string" || !namePattern.test(name)) {
        fail("name", "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit");
      }
      label = `${label} ("${name as string}")`;
      return name as string;
    },
    token(): string {
      const token = record.token;
      if (typeof token !== "string") return fail("token", "must be a string");
      if (token.length < minTokenLength) fail("token", `must be at least ${minTokenLength} characters (e.g. from "openssl rand -base64 32")`);
      if (token.length > maxTokenLength) fail("token", `must be at most ${maxTokenLength} characters`);
      if (!tokenPattern.test(token)) fail("token", "may contain only letters, digits and - . _ ~ + /, with trailing = (RFC 6750)");
      return token;
    },
    roles(): ReadonlySet<Role> {
      const value = record.roles;
      const allowed = `a non-empty array of ${roles.map((r) => `"${r}"`).join(", ")}`;
      if (!Array.isArray(value) || value.length === 0) return fail("roles", `must be ${allowed}`);
      const granted = new Set<Role>();
      for (const role of value) {
        if (!(roles as readonly unknown[]).includes(role)) fail("roles", `${JSON.stringify(role)} is not a role; must be ${allowed}`);
        granted.add(role as Role);
      }
      return granted;
    },
    topics(): readonly string[] | null {
      const value = record.topics;
      if (value === undefined) return null;
      if (!Array.isArray(value) || value.length === 0) {
        return fail("topics", "must be a non-empty array of topic prefixes; leave the field out to allow every topic");
      }
      for (const prefix of value) {
        if (typeof prefix !== "string" || prefix === "" || prefix.length > maxTopicLength) {
          fail("topics", `${JSON.stringify(prefix)} is not a topic prefix (1-${maxTopicLength} characters); leave the field out to allow every topic`);
        }
      }
      return [...new Set(value as string[])];
    },
  };
}

/**
 * V8's message, without the part that quotes the text around the mistake
 * (which may be a token): "Expected ',' or ']' after array element (line 3,
 * column 5)" is kept, "Unexpected token 'x', "…" is not valid JSON" is not.
 */
function describeSyntaxError(text: string, message: string): string {
  const located = /^(.*) in JSON at position (\d+)/.exec(message);
  if (located !== null) return `${located[1]} (${lineAndColumn(text, Number(located[2]))})`;
  if (/end of JSON input/.test(message)) return "it ends too early";
  return "unexpected character (jq or a JSON linter shows where)";
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position).split("\n");
  return `line ${before.length}, column ${before.at(-1)!.length + 1}`;
}
