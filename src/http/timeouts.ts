import type http from "node:http";
import http2 from "node:http2";
import { isLongLived } from "./long-lived.js";

/** The timeouts of --idle-timeout-ms and --request-timeout-ms, and the waits for a new connection's first bytes. */
export interface TimeoutOptions {
  idleTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * How long a new connection may stay silent: until its first bytes
 * (cleartext), and again until its HTTP/2 preface and first SETTINGS, as
 * for the TLS handshake. A real client writes its request or preface right
 * after connecting; 10 s covers several round trips of a slow mobile
 * network, while a connection that says nothing holds a slot (of
 * --max-connections and of its address's) for no longer than this.
 */
export const firstBytesTimeoutMs = 10_000;

/** An HTTP/1.1 request's headers must arrive within this time, or the request within requestTimeoutMs if that is shorter (slowloris). */
const http1HeadersTimeoutMs = 20_000;

/**
 * How often Node checks HTTP/1.1 requests against the timeouts above. The
 * check walks every open connection, cheap at our connection cap; it also
 * bounds how late a timeout can fire.
 */
const connectionsCheckingIntervalMs = 1_000;

/** How long a connection may say nothing at first: the shorter of firstBytesTimeoutMs and the idle timeout, since it is idle too. */
export function silenceTimeoutMs(options: TimeoutOptions): number {
  return Math.min(firstBytesTimeoutMs, options.idleTimeoutMs);
}

/** The HTTP/1.1 server's own timeouts. */
export function http1Timeouts(options: TimeoutOptions) {
  return {
    requestTimeout: options.requestTimeoutMs,
    headersTimeout: Math.min(http1HeadersTimeoutMs, options.requestTimeoutMs),
    keepAliveTimeout: options.idleTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingIntervalMs,
  };
}

/**
 * An HTTP/1.1 request whose socket goes quiet for requestTimeoutMs (a client
 * that stops sending, or stops reading the answer) is cut off. Node resets
 * the socket timeout on each request, and sets keep-alive's after it.
 */
export function limitHttp1Request(req: http.IncomingMessage, options: TimeoutOptions): void {
  req.socket.setTimeout(isLongLived(req.url) ? 0 : options.requestTimeoutMs);
}

/**
 * HTTP/2 limits per connection: a session that has not sent its preface and
 * first SETTINGS within silenceTimeoutMs is destroyed; a stream on which
 * nothing moves either way for requestTimeoutMs (a stream that never ends,
 * a client that never reads) is reset, releasing what it holds; a session
 * without open streams for idleTimeoutMs is closed with GOAWAY. Idle is
 * counted by open streams, not by frames, so keep-alive PINGs do not hold an
 * unused connection open.
 */
export function limitSession(session: http2.ServerHttp2Session, options: TimeoutOptions): void {
  const silent = setTimeout(() => session.destroy(), silenceTimeoutMs(options));
  silent.unref();
  session.once("remoteSettings", () => clearTimeout(silent));
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const startIdle = () => {
    idle = setTimeout(() => session.close(), options.idleTimeoutMs);
    idle.unref();
  };
  startIdle();
  session.on("close", () => {
    clearTimeout(silent);
    clearTimeout(idle);
  });
  session.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    open++;
    clearTimeout(idle);
    stream.on("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) startIdle();
    });
    if (!isLongLived(headers[":path"])) {
      stream.setTimeout(options.requestTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    }
  });
}
