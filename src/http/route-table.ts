import { Code, ConnectError } from "@connectrpc/connect";
import type http from "node:http";
import type http2 from "node:http2";
import type { Logger } from "pino";
import { answerForFailure } from "../answers/failures.js";
import { quoted } from "../answers/quote.js";
import { renderError, send, type ErrorOptions, type Rendered } from "../answers/render.js";
import type { Caller } from "../auth/caller.js";
import type { Gate } from "../auth/gate.js";

export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;

/** What a route's handler gets besides the request: who is asking, and the query string. */
export interface RouteContext {
  caller: Caller;
  query: URLSearchParams;
}

/**
 * An answer written as it is produced (Server-Sent Events): the head, then
 * each chunk once the previous one has drained, until the chunks end or the
 * client goes (then `signal` aborts and the chunks must end).
 */
export interface StreamedAnswer {
  status: number;
  headers: Record<string, string>;
  chunks(signal: AbortSignal): AsyncIterable<string>;
}

/** A plain HTTP route: a method on an exact path, and the answer to it. */
export interface HttpRoute {
  method: "GET" | "POST";
  path: string;
  /** The answer; a thrown error is answered as the REST routes answer errors. */
  handle(req: HttpRequest, context: RouteContext): Promise<Rendered | StreamedAnswer>;
}

/** A refusal whose HTTP status is not its code's, such as 415 for a content type: REST answers it with that status. */
export class HttpRefusal extends Error {
  constructor(
    readonly error: ConnectError,
    readonly options: ErrorOptions,
  ) {
    super(error.rawMessage);
  }
}

/** Sent with every 401 (RFC 6750): tells clients which scheme to use. */
const challenge = 'Bearer realm="tally"';

/**
 * The plain HTTP routes (the REST routes of the older services; later a
 * dashboard, a live stream, metrics), consulted before Connect: a request
 * whose path is in the table is answered here, anything else goes on to the
 * RPC paths. Every route passes the gate first under the name "METHOD /path";
 * a route without an access rule is refused there. REST routes name their
 * topic filter in ?topic=, as the older services did.
 */
export class RouteTable {
  private readonly byPath = new Map<string, Map<string, HttpRoute>>();

  constructor(
    routes: readonly HttpRoute[],
    private readonly gate: Gate,
    private readonly log: Logger,
  ) {
    for (const route of routes) {
      const methods = this.byPath.get(route.path) ?? new Map<string, HttpRoute>();
      methods.set(route.method, route);
      this.byPath.set(route.path, methods);
    }
  }

  /** Answers the request if its path is a route's (false otherwise, for the RPC paths to serve). */
  serve(req: HttpRequest, res: HttpResponse): boolean {
    const target = req.url ?? "/";
    const queryStart = target.indexOf("?");
    const path = queryStart < 0 ? target : target.slice(0, queryStart);
    const methods = this.byPath.get(path);
    if (methods === undefined) return false;
    void this.answer(req, res, methods, path, queryStart < 0 ? "" : target.slice(queryStart + 1));
    return true;
  }

  private async answer(req: HttpRequest, res: HttpResponse, methods: Map<string, HttpRoute>, path: string, queryText: string): Promise<void> {
    let label = `${req.method ?? "?"} ${path}`;
    let caller: Caller | undefined;
    try {
      const route = methods.get(req.method === "HEAD" ? "GET" : (req.method ?? ""));
      if (route === undefined) throw methodNotAllowed(req.method ?? "", path, [...methods.keys()]);
      label = `${route.method} ${route.path}`;
      const query = new URLSearchParams(queryText);
      caller = this.gate.admit({ operation: label, label, authorization: req.headers.authorization, topicFilter: query.get("topic") ?? "" });
      const answer = await route.handle(req, { caller, query });
      if ("chunks" in answer) await stream(res, answer);
      else send(res, answer);
    } catch (err) {
      if (res.headersSent) return;
      send(res, this.errorAnswer(err, req, label, caller));
    }
  }

  private errorAnswer(err: unknown, req: HttpRequest, label: string, caller: Caller | undefined): Rendered {
    if (err instanceof HttpRefusal) return renderError(err.error, "rest", err.options);
    const aborted = req.destroyed;
    const error = answerForFailure(this.log, err, { operation: label, token: caller?.name, aborted });
    if (error.code === Code.Unauthenticated) {
      return renderError(error, "rest", { headers: { "www-authenticate": req.headers.authorization === undefined ? challenge : `${challenge}, error="invalid_token"` } });
    }
    return renderError(error, "rest");
  }
}

/**
 * Writes a streamed answer, one chunk at a time, waiting for each to drain,
 * so a client that reads slowly holds back the producer instead of filling
 * memory. Ends when the chunks end or the response closes.
 */
async function stream(res: HttpResponse, answer: StreamedAnswer): Promise<void> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once("close", onClose);
  try {
    res.writeHead(answer.status, answer.headers);
    for await (const chunk of answer.chunks(gone.signal)) {
      if (gone.signal.aborted) break;
      if (!(res as http.ServerResponse).write(chunk)) await drained(res, gone.signal);
    }
    if (!gone.signal.aborted) res.end();
  } finally {
    res.off("close", onClose);
    gone.abort();
  }
}

function drained(res: HttpResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function methodNotAllowed(method: string, path: string, allowed: string[]): HttpRefusal {
  const allow = allowed.join(", ");
  return new HttpRefusal(new ConnectError(`${quoted(method)} is not allowed on ${path}; use ${allow}`, Code.InvalidArgument), {
    status: 405,
    codeName: "method_not_allowed",
    headers: { allow },
  });
}
