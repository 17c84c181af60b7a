import { Code, ConnectError } from "@connectrpc/connect";
import { isIPv4, isIPv6 } from "node:net";
import type { Logger } from "pino";
import { quoted } from "../answers/quote.js";
import { isRpcPath, renderError, rpcSurface, send } from "../answers/render.js";
import { logRefusal } from "../auth/policy.js";
import type { HttpRequest, HttpResponse } from "./route-table.js";

/**
 * Keeps web pages a developer happens to open away from a server on their
 * machine. With authentication off (the default) nothing else stops them: a
 * page may send a "simple" request (text/plain or form content, or none) to
 * any address without asking the server first (no CORS preflight), and DNS
 * rebinding lets a page read answers, since the browser then believes the
 * server is the page's own origin. Every request passes here before the
 * route table and the RPC paths:
 *
 * 1. Host: on a loopback listen address, a request must be addressed to a
 *    loopback name (localhost, *.localhost, 127.x.x.x, [::1]; any port).
 *    A rebound page's requests carry its own host name and are refused (421).
 *    No Host at all (HTTP/1.0) is allowed: browsers always send one. On any
 *    other listen address (0.0.0.0 in a container) clients use names we
 *    cannot know, so there is no Host check.
 * 2. Cross-site: a request that may change something (any method but GET,
 *    HEAD, OPTIONS) is refused (403) when `Sec-Fetch-Site` says `cross-site`
 *    or `same-site`, or when `Origin` is present and is not this server's
 *    own origin (the connection's scheme and the Host it was sent to).
 *    `same-site` is refused too: every other port of localhost is the same
 *    site, and that is exactly where other local dev servers run.
 * 3. Content: such a request from a browser (it carries `Origin` or
 *    `Sec-Fetch-Site`) must have a content type a browser sends only after a
 *    preflight: not text/plain, form-urlencoded or multipart, and not none
 *    (415). The same-origin dashboard sends JSON.
 *
 * Requests without those browser headers (curl, scripts, gRPC clients) meet
 * only rule 1, so `curl -d` with its default form content type still
 * publishes, as the REST routes always allowed. Browsers put `Origin` on
 * every request that is not GET or HEAD (the Fetch standard; Chrome, Safari,
 * and Firefox since 70) and `Sec-Fetch-Site` on every request to localhost,
 * so a request with neither is not a browser's. `Sec-Fetch-Mode` alone is
 * not a sign of a browser: Node's own fetch sends `Sec-Fetch-Mode: cors` with
 * every request.
 *
 * The rules hold with authentication on as well. Bearer tokens are not sent
 * by browsers on their own, so there they only add defence in depth, but
 * they cost nothing: tally serves no CORS headers, so a page of another
 * origin could not use tally with a token anyway. Adding CORS later means
 * revisiting rule 2.
 */

/** The parts of a request the guard looks at; Node's HTTP/1.1 and HTTP/2 requests both have them. */
export interface GuardedRequest {
  method?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

/** What the guard knows of the server, fixed at startup. */
export interface GuardSettings {
  /** Refuse requests addressed to names other than loopback ones: the server listens on a loopback address. */
  loopbackOnly: boolean;
  /** The scheme of the server's own origin: "https" when the port speaks TLS. */
  scheme: "http" | "https";
}

/** Why a request is refused: the error, and the HTTP status REST and Connect answer it with. */
export interface BrowserRefusal {
  error: ConnectError;
  status: 403 | 415 | 421;
}

/** Methods that change nothing, so cross-site senders are no threat (they cannot read the answer). */
const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** Content types a page may send anywhere without a CORS preflight (the Fetch standard's safelist). */
const simpleContentTypes = new Set(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]);

/**
 * host[:port] as a Host header or :authority carries it: a bracketed IPv6
 * literal, or a name or IPv4 address (reg-name characters, no userinfo).
 */
const authorityPattern = /^(?:\[([0-9A-Fa-f:.]+)\]|([\w.~%!$&'()*+,;=-]+))(?::\d{0,5})?$/;

/** Whether the server's listen address (config.host) is a loopback one, which turns the Host check on. */
export function isLoopbackListenHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isIPv6(bare) ? isLoopbackIPv6(bare) : isLoopbackName(bare);
}

/** The settings for a server listening on `host`, with or without TLS. */
export function guardSettings(host: string, tls: boolean): GuardSettings {
  return { loopbackOnly: isLoopbackListenHost(host), scheme: tls ? "https" : "http" };
}

/** The decision for one request: undefined to let it through, or why it is refused. */
export function judgeBrowserRequest(req: GuardedRequest, settings: GuardSettings): BrowserRefusal | undefined {
  const authority = header(req, ":authority");
  const host = header(req, "host");
  if (settings.loopbackOnly) {
    for (const name of [authority, host]) {
      if (name !== undefined && !isLoopbackAuthority(name)) {
        return refusal(
          421,
          Code.PermissionDenied,
          `host ${quoted(name)} is not a loopback name: this server listens on loopback and answers only requests addressed to localhost, *.localhost, 127.x.x.x or [::1] (a guard against DNS rebinding)`,
        );
      }
    }
  }
  const method = req.method ?? "";
  if (safeMethods.has(method)) return undefined;

  const site = header(req, "sec-fetch-site");
  if (site === "cross-site" || site === "same-site") {
    return refusal(403, Code.PermissionDenied, `a ${site} ${quoted(method, 16)} request (Sec-Fetch-Site) is refused: only pages served by this server may change anything here`);
  }
  const origin = header(req, "origin");
  if (origin !== undefined) {
    const own = ownOrigin(authority ?? host, settings.scheme);
    if (origin !== own) {
      const ownText = own === undefined ? "cannot be told from the request's Host" : `is ${quoted(own)}`;
      return refusal(403, Code.PermissionDenied, `origin ${quoted(origin)} may not send ${quoted(method, 16)} requests here: this server's origin ${ownText}`);
    }
  }
  if (origin !== undefined || site !== undefined) {
    const contentType = header(req, "content-type");
    const essence = contentType?.split(";", 1)[0]!.trim().toLowerCase();
    if (essence === undefined || essence === "" || simpleContentTypes.has(essence)) {
      const named = contentType === undefined ? "(none)" : quoted(contentType);
      return refusal(415, Code.InvalidArgument, `content-type ${named} is refused from a browser, which may send it to any site unasked; send application/json`);
    }
  }
  return undefined;
}

/**
 * The guard as the server consults it, before the route table and the RPC
 * paths: refused requests are answered here in the form their route would
 * answer (REST JSON, Connect JSON, or gRPC status) and logged once.
 */
export class BrowserGuard {
  private readonly settings: GuardSettings;

  constructor(
    server: { host: string; tls: boolean },
    private readonly log: Logger,
  ) {
    this.settings = guardSettings(server.host, server.tls);
  }

  /** Answers the request and returns true if it is refused; false leaves it to the routes and RPC paths. */
  refused(req: HttpRequest, res: HttpResponse): boolean {
    const refused = judgeBrowserRequest(req, this.settings);
    if (refused === undefined) return false;
    const path = (req.url ?? "/").split("?", 1)[0]!;
    const contentType = header(req, "content-type");
    const surface = rpcSurface(contentType) === "grpc" ? "grpc" : isRpcPath(path) ? "connect" : "rest";
    logRefusal(this.log, refused.error, undefined, quoted(`${req.method ?? "?"} ${path}`));
    send(res, renderError(refused.error, surface, { status: refused.status, contentType }));
    return true;
  }
}

function refusal(status: BrowserRefusal["status"], code: Code, message: string): BrowserRefusal {
  return { error: new ConnectError(message, code), status };
}

/** One header's value; repeated ones joined, as Node joins most headers, so a second Origin cannot hide behind the first. */
function header(req: GuardedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Whether a Host or :authority value names this machine's loopback interface, on any port. */
export function isLoopbackAuthority(authority: string): boolean {
  const match = authorityPattern.exec(authority);
  if (match === null) return false;
  return match[1] !== undefined ? isLoopbackIPv6(match[1]) : isLoopbackName(match[2]!);
}

/** localhost and its subdomains (which browsers resolve to loopback without asking DNS), and 127.0.0.0/8. */
function isLoopbackName(name: string): boolean {
  const lower = name.toLowerCase().replace(/\.$/, "");
  return lower === "localhost" || lower.endsWith(".localhost") || (isIPv4(lower) && lower.startsWith("127."));
}

/** ::1 in any spelling, and 127.0.0.0/8 mapped into IPv6. */
function isLoopbackIPv6(address: string): boolean {
  if (!isIPv6(address)) return false;
  // The URL parser writes IPv6 addresses in their one canonical form.
  const canonical = new URL(`http://[${address}]`).hostname;
  return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/** The server's own origin as a browser would write it, for a request sent to `authority`; undefined when it has none or it is malformed. */
function ownOrigin(authority: string | undefined, scheme: GuardSettings["scheme"]): string | undefined {
  if (authority === undefined || !authorityPattern.test(authority)) return undefined;
  try {
    return new URL(`${scheme}://${authority}`).origin;
  } catch {
    return undefined;
  }
}
