import { Code, ConnectError } from "@connectrpc/connect";
import { createHash, timingSafeEqual } from "node:crypto";

/** What a token may do: `publish` events, `read` events and statistics. */
export type Role = "publish" | "read";

/** Every role, in the order error messages list them. */
export const roles: readonly Role[] = ["publish", "read"];

/** Who a request comes from and what it may do; the token itself never leaves this module. */
export interface Grant {
  /** Logged and named in error messages in place of the token. */
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  /** Topic prefixes this token is limited to; null for every topic. */
  readonly topics: readonly string[] | null;
}

/** One entry of the token file, validated (see token-file.ts). */
export interface TokenEntry {
  token: string;
  grant: Grant;
}

/** The scheme of `Authorization: Bearer <token>` (RFC 6750), case-insensitive as RFC 9110 says. */
const bearerPattern = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/**
 * The known tokens, kept only as SHA-256 digests. Lookups compare the digest
 * of the presented token with every known digest in constant time, so neither
 * a token's content nor its position in the file shows in response times.
 */
export class AccessList {
  private readonly digests: { digest: Buffer; grant: Grant }[];

  constructor(entries: readonly TokenEntry[]) {
    this.digests = entries.map((e) => ({ digest: digest(e.token), grant: e.grant }));
  }

  /** How many tokens are known, for the startup log. */
  get size(): number {
    return this.digests.length;
  }

  /**
   * The grant for an `Authorization` header value; throws `unauthenticated`
   * when there is none, it is not a bearer token, or the token is unknown.
   * The message never repeats what the client sent.
   */
  authenticate(authorization: string | null | undefined): Grant {
    if (authorization === null || authorization === undefined || authorization === "") {
      throw new ConnectError('missing credentials: send the header "Authorization: Bearer <token>"', Code.Unauthenticated);
    }
    const match = bearerPattern.exec(authorization);
    if (match === null) {
      throw new ConnectError('malformed credentials: expected "Authorization: Bearer <token>"', Code.Unauthenticated);
    }
    const presented = digest(match[1]!);
    let found: Grant | undefined;
    // No early exit: every digest is compared, whichever matches.
    for (const entry of this.digests) {
      if (timingSafeEqual(presented, entry.digest)) found = entry.grant;
    }
    if (found === undefined) throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    return found;
  }
}
