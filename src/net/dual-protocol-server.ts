import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/** The HTTP/2 connection preface starts with these bytes; no HTTP/1 method does. */
const http2PrefaceStart = Buffer.from("PRI ");

/** Per-stream flow-control window we grant clients. Big enough for a 500-event batch in flight, small enough that a paused stream holds little memory. */
const streamWindowBytes = 1024 * 1024;

/**
 * Connection-level window. Node's default 64 KiB throttles large unary
 * requests (DESIGN.md measured 84k to 150k events/s by raising it); the
 * per-stream window still bounds what one paused stream can buffer.
 */
const connectionWindowBytes = 16 * 1024 * 1024;

/** Header block limit for both protocols; gRPC's usual 8 KiB plus room for auth tokens. */
export const maxHeaderBytes = 16 * 1024;

/** Streams one HTTP/2 connection may run at once. */
const maxConcurrentStreams = 1000;

/** An idle HTTP/1.1 keep-alive connection is closed after this long. */
const keepAliveTimeoutMs = 5_000;

/** An HTTP/1.1 request must arrive whole within this time (slowloris). */
const http1RequestTimeoutMs = 60_000;

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** One TCP port serving HTTP/2 cleartext (h2c, prior knowledge) and HTTP/1.1 with the same handler. */
export interface DualProtocolServer {
  tcp: net.Server;
  /** Stops accepting connections; open ones stay until closed. */
  stopAccepting(): void;
  /** Sends HTTP/2 GOAWAY and closes idle HTTP/1.1 connections; in-flight requests may finish. */
  closeConnectionsGracefully(): void;
  /** Resolves when no connection is open. */
  allClosed(): Promise<void>;
  /** Tears down every connection now. */
  destroyConnections(): void;
}

/**
 * Node's h2c server cannot fall back to HTTP/1.1 (that needs TLS ALPN), and
 * curl, browsers' fetch polyfills and the older REST clients speak HTTP/1.1.
 * So a plain TCP server looks at the first bytes of each connection and hands
 * the socket to an HTTP/2 or an HTTP/1.1 server sharing one request handler.
 */
export function createDualProtocolServer(handler: RequestHandler): DualProtocolServer {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const onAllClosed: (() => void)[] = [];

  const h2 = http2.createServer(
    {
      settings: { initialWindowSize: streamWindowBytes, maxConcurrentStreams, maxHeaderListSize: maxHeaderBytes },
      maxSessionMemory: 64,
    },
    handler,
  );
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => undefined);
    session.setLocalWindowSize(connectionWindowBytes);
  });

  const h1 = http.createServer(
    { maxHeaderSize: maxHeaderBytes, requestTimeout: http1RequestTimeoutMs, keepAliveTimeout: keepAliveTimeoutMs, noDelay: true },
    handler,
  );

  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) for (const resolve of onAllClosed.splice(0)) resolve();
    });
    socket.on("error", () => socket.destroy());
    socket.once("data", (first: Buffer) => {
      // Put the bytes back and hand the socket over. HTTP/2 reads what is
      // buffered itself and must find the stream paused; HTTP/1.1 listens
      // for 'data' and needs it flowing again.
      socket.pause();
      socket.unshift(first);
      const head = first.subarray(0, http2PrefaceStart.length);
      if (head.equals(http2PrefaceStart.subarray(0, head.length))) {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });

  return {
    tcp,
    stopAccepting: () => tcp.close(),
    closeConnectionsGracefully() {
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
    },
    allClosed: () => (sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => onAllClosed.push(resolve))),
    destroyConnections() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
