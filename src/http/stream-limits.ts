import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type http from "node:http";
import type http2 from "node:http2";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { renderError, requestSurface, send } from "../answers/render.js";
import { isLongLived, isManyPerConnection, pathOf } from "./long-lived.js";

/**
 * Health watches one connection may hold. A health checker needs one watch
 * per service it checks (tally answers for two names), and a few components
 * sharing a channel may each watch; 10 leaves them room, while 100 quiet
 * watches would fill the connection's whole SETTINGS_MAX_CONCURRENT_STREAMS.
 * Subscriptions are not capped per connection beyond that setting: a client
 * multiplexes one per topic on one channel.
 */
const maxLongLivedPerConnection = 10;

/**
 * Share of --max-streams that long-lived calls may hold in total, so that
 * watches alone can never leave publishers and readers without streams.
 */
const longLivedShareOfStreams = 0.25;

/**
 * Retry-After of a request refused because every stream is taken. Streams
 * free up as calls finish, within milliseconds for most; one second is the
 * smallest hint the header can give.
 */
const streamsRetryAfterSeconds = 1;

/**
 * --max-streams and the caps on long-lived calls: every request counts while
 * it is open, an HTTP/2 stream or an HTTP/1.1 request alike (each holds a
 * call's state and buffers; HTTP/1.1 has no streams, but a request is a
 * stream's equivalent).
 *
 * A request beyond a limit is refused before it reaches any handler, with an
 * answer in the caller's form. Beyond --max-streams, or the long-lived share
 * of it: `unavailable` with a retry hint (Retry-After, and RetryInfo for RPC
 * clients), as for a full ingest queue, so clients already handle it; the
 * request was not processed, and a retried Publish is harmless anyway.
 * RST_STREAM REFUSED_STREAM would free the stream sooner (an answer given
 * early reads and drops the rest of the request's body first), but
 * connect-es clients report it as `internal`, with no hint of when to come
 * back, and HTTP/1.1 has nothing like it. A long-lived call beyond its
 * connection's cap is answered `resource_exhausted`: retrying on the same
 * connection cannot succeed.
 */
export class StreamLimits {
  private open = 0;
  private longLived = 0;
  private readonly maxLongLived: number;
  private readonly longLivedOn = new WeakMap<object, number>();

  constructor(private readonly maxStreams: number) {
    this.maxLongLived = Math.max(1, Math.floor(maxStreams * longLivedShareOfStreams));
  }

  /**
   * Counts the request until it closes and answers true, or refuses it and
   * answers false; the caller hands an admitted request to its handler.
   */
  admit(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): boolean {
    const h2 = req.httpVersionMajor === 2 ? (req as http2.Http2ServerRequest).stream : undefined;
    // An HTTP/2 connection is its session; an HTTP/1.1 one, its socket.
    const connection: object = h2?.session ?? req.socket;
    const longLived = isLongLived(req.url);
    if (this.open >= this.maxStreams) {
      refuse(req, res, busy(`the server has ${this.maxStreams} calls open, its limit; retry shortly`));
      return false;
    }
    if (longLived && this.longLived >= this.maxLongLived) {
      refuse(req, res, busy(`the server has ${this.maxLongLived} calls like ${pathOf(req.url)} open, its limit; retry shortly`));
      return false;
    }
    const capped = longLived && !isManyPerConnection(req.url);
    const onConnection = capped ? (this.longLivedOn.get(connection) ?? 0) : 0;
    if (capped && onConnection >= maxLongLivedPerConnection) {
      refuse(req, res, new ConnectError(`at most ${maxLongLivedPerConnection} calls like ${pathOf(req.url)} may be open on one connection`, Code.ResourceExhausted));
      return false;
    }
    this.open++;
    if (longLived) this.longLived++;
    if (capped) this.longLivedOn.set(connection, onConnection + 1);
    const release = () => {
      this.open--;
      if (longLived) this.longLived--;
      if (capped) this.longLivedOn.set(connection, this.longLivedOn.get(connection)! - 1);
    };
    // HTTP/2: the stream's close. HTTP/1.1: the response's, which Node emits when it is done or its connection is gone.
    if (h2 !== undefined) h2.once("close", release);
    else res.once("close", release);
    return true;
  }
}

/** `unavailable` with the retry hint of a server that has no stream to spare. */
function busy(message: string): ConnectError {
  return new ConnectError(message, Code.Unavailable, { "retry-after": String(streamsRetryAfterSeconds) }, [
    { desc: RetryInfoSchema, value: { retryDelay: durationFromMs(streamsRetryAfterSeconds * 1000) } },
  ]);
}

/** Answers a refused request in the caller's form: gRPC status for gRPC and gRPC-Web, JSON for Connect and REST. */
function refuse(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, err: ConnectError): void {
  const contentType = req.headers["content-type"];
  send(res, renderError(err, requestSurface(pathOf(req.url), contentType), { contentType }));
}
