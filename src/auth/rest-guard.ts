import { ConnectError, Code } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type http from "node:http";
import type { Logger } from "pino";
import type { Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { codeName, httpStatusFor } from "../errors.js";
import type { Publisher } from "../ingest/publisher.js";
import type { AccessList, Grant } from "./access-list.js";
import { checkPublishTopics, checkReadAll, checkReadTopic, logRefusal, requireRole } from "./policy.js";

type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Response = Parameters<Fallback>[1];

/** Sent with every 401 (RFC 6750): tells clients which scheme to use. */
const challenge = 'Bearer realm="tally"';

/** Builds the REST routes over a given publisher (server.ts: restHandler with its deps). */
export type RestRoutes = (publisher: Publisher) => Fallback;

/**
 * Wraps the REST routes: authenticates every request but GET /health and
 * checks the route's role (and topic filter) from the URL. A topic-limited
 * token's requests run on routes of their own, built once per token over a
 * publisher that checks each event's topic once the body is decoded. Grants
 * are fixed at startup, so this costs one set of routes per such token, and
 * nothing per request (no AsyncLocalStorage, which would slow every await).
 *
 * Routes not listed in `authorizeRoute` need a valid token of any role; a new
 * route that needs a role must be added there.
 */
export function guardRest(access: AccessList, log: Logger, routes: RestRoutes, publisher: Publisher): Fallback {
  const open = routes(publisher);
  const limited = new Map<Grant, Fallback>();
  const routesFor = (grant: Grant): Fallback => {
    if (grant.topics === null) return open;
    let own = limited.get(grant);
    if (own === undefined) limited.set(grant, (own = routes(topicCheckedPublisher(publisher, grant, log))));
    return own;
  };
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/health") {
      open(req, res);
      return;
    }
    const operation = `${req.method ?? "?"} ${url.pathname}`;
    let grant: Grant | undefined;
    try {
      grant = access.authenticate(req.headers.authorization);
      authorizeRoute(grant, url, operation);
    } catch (err) {
      refuse(res, logRefusal(log, err, grant, operation), req.headers.authorization !== undefined);
      return;
    }
    routesFor(grant)(req, res);
  };
}

function authorizeRoute(grant: Grant, url: URL, operation: string): void {
  switch (url.pathname) {
    case "/publish":
      requireRole(grant, "publish", operation);
      return;
    case "/events":
      checkReadTopic(grant, url.searchParams.get("topic") ?? "", operation);
      return;
    case "/stats":
      checkReadAll(grant, operation);
      return;
  }
}

/** A REST error in the shape the routes answer with, plus the Bearer challenge on 401. */
function refuse(res: Response, err: ConnectError, tokenSent: boolean): void {
  const text = `${JSON.stringify({ code: codeName(err.code), message: err.rawMessage })}\n`;
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) };
  if (err.code === Code.Unauthenticated) headers["www-authenticate"] = tokenSent ? `${challenge}, error="invalid_token"` : challenge;
  (res as http.ServerResponse).writeHead(httpStatusFor(err.code), headers);
  res.end(text);
}

/**
 * A publisher for one topic-limited token: before a batch goes to the real
 * publisher, every event's topic is checked against the grant, and the whole
 * batch is refused with `permission_denied` (403) naming each index and topic.
 */
function topicCheckedPublisher(publisher: Publisher, grant: Grant, log: Logger): Publisher {
  /** The methods that take a batch, events first; the rest pass through untouched. */
  const batchMethods = new Set<PropertyKey>(["publish", "publishWhenRoom"]);
  return new Proxy(publisher, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!batchMethods.has(property)) return method.bind(target);
      return (...args: unknown[]) => {
        try {
          checkPublishTopics(grant, args[0] as readonly (Event | undefined)[]);
        } catch (err) {
          throw logRefusal(log, err, grant, "POST /publish");
        }
        return method.apply(target, args);
      };
    },
  });
}
