import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type stream from "node:stream";
import tls from "node:tls";
import { json } from "../answers/render.js";
import { ConnectionAge } from "./connection-age.js";
import { ConnectionLimits } from "./connection-limits.js";
import { drainAfterEarlyAnswer, lingerAfterEarlyAnswer } from "./early-answers.js";
import { connectionWindowBytes, http1ServerSettings, http2ServerSettings, maxHeaderBytes } from "./protocol-settings.js";
import { StreamLimits } from "./stream-limits.js";
import { countResets, skipStream } from "./stream-resets.js";
import { firstBytesTimeoutMs, http1Timeouts, limitHttp1Request, limitSession, silenceTimeoutMs } from "./timeouts.js";

/** The HTTP/2 connection preface starts with these bytes; no HTTP/1 method does. */
const http2PrefaceStart = Buffer.from("PRI ");

/** A client that has not finished its TLS handshake by then is holding a connection slot for nothing (firstBytesTimeoutMs, as for cleartext). */
const tlsHandshakeTimeoutMs = firstBytesTimeoutMs;

/**
 * Answers an HTTP/1.1 request Node could not parse with a JSON body that says
 * why (Node's default is a bare status line), then closes the connection.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: stream.Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, body] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", { code: "resource_exhausted", message: `request headers exceed the ${maxHeaderBytes}-byte limit` }]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", { code: "deadline_exceeded", message: "the request did not arrive in time" }]
        : [400, "Bad Request", { code: "invalid_argument", message: "malformed HTTP/1.1 request" }];
  const answer = json(status, body, { connection: "close" });
  const head = Object.entries(answer.headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n${head.join("")}\r\n`, "latin1"), answer.body!]));
}

/** PEM certificate chain and private key for TLS, read and checked at startup (app/config.ts). */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** How one port is served and what each connection may hold; see Config for the meaning of each. */
export interface ServerOptions {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxStreams: number;
  maxStreamsPerConnection: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  /** Serve TLS only (HTTP/2 or HTTP/1.1 by ALPN) with this certificate; null for cleartext. */
  tls: TlsMaterial | null;
}

/** One TCP port serving HTTP/2 and HTTP/1.1 with the same handler: cleartext (h2c) or TLS. */
export interface DualProtocolServer {
  /** The listening server (a tls.Server when TLS is on). */
  tcp: net.Server;
  /** Stops accepting connections and starts draining: open ones stay until closed. */
  stopAccepting(): void;
  /** Sends HTTP/2 GOAWAY; HTTP/1.1 connections close after their next answer. In-flight requests may finish. */
  closeConnectionsGracefully(): void;
  /** Resolves when no connection is open. */
  allClosed(): Promise<void>;
  /** Tears down every connection now. */
  destroyConnections(): void;
}

/**
 * Cleartext: Node's h2c server cannot fall back to HTTP/1.1 (that needs TLS
 * ALPN), and curl, browsers' fetch polyfills and the older REST clients speak
 * HTTP/1.1. So a plain TCP server looks at the first bytes of each connection
 * and hands the socket to an HTTP/2 or an HTTP/1.1 server sharing one handler.
 *
 * TLS: one http2 secure server with ALPN offering h2 and http/1.1, so gRPC,
 * Connect and browsers share the port, and nothing is served in cleartext.
 */
export function createDualProtocolServer(handle: RequestHandler, options: ServerOptions): DualProtocolServer {
  const limits = new ConnectionLimits(options.maxConnections, options.maxConnectionsPerAddress);
  const age = new ConnectionAge(options.maxConnectionAgeMs, options.maxConnectionAgeGraceMs);
  const streams = new StreamLimits(options.maxStreams);
  const handler: RequestHandler = (req, res) => {
    // Every request's early answer reaches its client (early-answers.ts), whichever protocol carries it.
    if (req.httpVersionMajor === 2) {
      // Reset by its client already, or its session is being cut (stream-resets.ts): nothing to answer.
      if (skipStream((req as http2.Http2ServerRequest).stream)) return;
      drainAfterEarlyAnswer(req as http2.Http2ServerRequest);
    } else {
      lingerAfterEarlyAnswer(req as http.IncomingMessage, res as http.ServerResponse);
    }
    // Beyond a limit on calls, refused before any handler (stream-limits.ts).
    if (!streams.admit(req, res)) return;
    handle(req, res);
  };
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const onAllClosed: (() => void)[] = [];
  /**
   * Counts a new TCP connection against --max-connections and its address
   * (making room by closing one never served, if need be), or closes it;
   * tracks it until it closes.
   */
  const accept = (socket: net.Socket): boolean => {
    if (!limits.admit(socket)) {
      socket.destroy();
      return false;
    }
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) for (const resolve of onAllClosed.splice(0)) resolve();
    });
    return true;
  };
  let draining = false;
  /**
   * HTTP/1.1 limits per request, and while draining or once the connection
   * has reached its age "Connection: close" on every answer, so clients stop
   * reusing connections: closing an idle keep-alive connection instead races
   * with a request written to it, which then gets no answer at all rather
   * than a clean refusal.
   */
  const onHttp1Request = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Its headers are all in: a connection being served is no longer one to close for a newcomer.
    limits.served(req.socket);
    limitHttp1Request(req, options);
    if (draining || age.aged(req.socket)) res.setHeader("connection", "close");
  };
  const onSession = (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    // A preface, SETTINGS and PINGs cost the client nothing; a stream is a request, served from then on.
    session.once("stream", () => limits.served(session.socket));
    session.on("error", () => undefined);
    session.setLocalWindowSize(connectionWindowBytes);
    limitSession(session, options);
    countResets(session);
    age.session(session);
  };
  const h2Settings = http2ServerSettings(options.maxStreamsPerConnection);

  let tcp: net.Server;
  let stopListening: () => void;
  if (options.tls !== null) {
    const secure = http2.createSecureServer(
      { ...h2Settings, ...options.tls, allowHTTP1: true, noDelay: true, handshakeTimeout: tlsHandshakeTimeoutMs },
      handler,
    );
    // With allowHTTP1, Node serves HTTP/1.1 through this server's own fields, and leaves keep-alive unset.
    Object.assign(secure, { maxHeaderSize: maxHeaderBytes, ...http1Timeouts(options) });
    secure.on("connection", accept);
    secure.on("secureConnection", (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol !== "h2") age.http1(socket);
    });
    secure.on("session", onSession);
    // Before the handler, so the headers set there are in place when it answers.
    secure.prependListener("request", (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      if (req.httpVersionMajor === 1) onHttp1Request(req as http.IncomingMessage, res as http.ServerResponse);
    });
    tcp = secure;
    // Http2SecureServer.close() would also close idle HTTP/1.1 connections at
    // once (see onHttp1Request); the plain TLS server's close() only stops listening.
    stopListening = () => tls.Server.prototype.close.call(secure);
  } else {
    const h2 = http2.createServer(h2Settings, handler);
    h2.on("session", onSession);
    const plain = http.createServer({ ...http1ServerSettings, ...http1Timeouts(options) }, handler);
    plain.prependListener("request", onHttp1Request);
    plain.on("clientError", answerClientError);
    tcp = net.createServer({ noDelay: true }, (socket) => {
      if (!accept(socket)) return;
      socket.on("error", () => socket.destroy());
      // Until its first bytes arrive a connection belongs to neither server, so
      // neither's timeouts apply: one that stays silent is closed here.
      const silent = () => socket.destroy();
      socket.setTimeout(silenceTimeoutMs(options), silent);
      socket.once("data", (first: Buffer) => {
        socket.setTimeout(0);
        socket.off("timeout", silent);
        // Put the bytes back and hand the socket over. HTTP/2 reads what is
        // buffered itself and must find the stream paused; HTTP/1.1 listens
        // for 'data' and needs it flowing again.
        socket.pause();
        socket.unshift(first);
        const head = first.subarray(0, http2PrefaceStart.length);
        if (head.equals(http2PrefaceStart.subarray(0, head.length))) {
          h2.emit("connection", socket);
        } else {
          age.http1(socket);
          plain.emit("connection", socket);
          socket.resume();
        }
      });
    });
    // Node enforces headersTimeout/requestTimeout once a server emits
    // 'listening'. This one never listens itself: the TCP server hands it sockets.
    tcp.on("listening", () => plain.emit("listening"));
    stopListening = () => tcp.close();
  }
  // No tcp.maxConnections: Node would close a newcomer beyond it before
  // accept() could make room for it by closing a connection never served.

  return {
    tcp,
    stopAccepting() {
      draining = true;
      stopListening();
    },
    closeConnectionsGracefully() {
      // GOAWAY tells an HTTP/2 client which streams were not processed: a clean
      // refusal. HTTP/1.1 has no such thing, so its connections close after
      // their next answer (onHttp1Request), or are cut with the rest at the end.
      for (const session of sessions) session.close();
    },
    allClosed: () => (sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => onAllClosed.push(resolve))),
    destroyConnections() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
