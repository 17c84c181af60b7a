import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";

/**
 * Each connection's age limit is drawn within ±10% of --max-connection-age-ms,
 * as gRPC servers do: clients that connected together (after a deploy, a
 * network blip) then spread their reconnections instead of all coming back
 * in the same second.
 */
const ageJitter = 0.1;

/** What a connection carries when it comes of age: HTTP/2 sessions are keyed by session, HTTP/1.1 by socket. */
type Carrier = http2.Http2Session | net.Socket;

/** Aborted when a connection reaches its age; one per connection that has an age limit. */
const goingAwayOf = new WeakMap<Carrier, AbortController>();

/** The signal of connections that never age (--max-connection-age-ms 0). */
const neverGoingAway = new AbortController().signal;

/**
 * Aborted when the connection carrying `req` reaches its maximum age. Calls
 * that would otherwise never end (health Watch) end then, so that their
 * clients reconnect on a new connection while this one drains.
 */
export function connectionGoingAway(req: http.IncomingMessage | http2.Http2ServerRequest): AbortSignal {
  const carrier = req.httpVersionMajor === 2 ? (req as http2.Http2ServerRequest).stream.session : req.socket;
  return (carrier !== undefined && goingAwayOf.get(carrier)?.signal) || neverGoingAway;
}

/**
 * --max-connection-age-ms: connections are rebalanced across servers, and
 * long-lived calls re-established, at least this often. At its age (with
 * jitter) an HTTP/2 connection gets GOAWAY, so its client opens a new one
 * for new calls while the calls in flight finish; an HTTP/1.1 connection
 * gets `Connection: close` on its next answer. After the grace, whatever is
 * still open is cut.
 */
export class ConnectionAge {
  constructor(
    private readonly maxAgeMs: number,
    private readonly graceMs: number,
  ) {}

  /** Starts an HTTP/2 session's clock. */
  session(session: http2.ServerHttp2Session): void {
    this.start(
      session,
      () => session.close(),
      () => session.destroy(),
    );
  }

  /** Starts the clock of a connection that speaks HTTP/1.1. */
  http1(socket: net.Socket): void {
    // Nothing to do at its age but mark it (aged()): closing an idle
    // keep-alive connection then would race with a request being written to it.
    this.start(
      socket,
      () => undefined,
      () => socket.destroy(),
    );
  }

  /** Whether an HTTP/1.1 connection has reached its age: its answers from now on say `Connection: close`. */
  aged(socket: net.Socket): boolean {
    return goingAwayOf.get(socket)?.signal.aborted ?? false;
  }

  private start(carrier: Carrier, goAway: () => void, cut: () => void): void {
    if (this.maxAgeMs === 0) return;
    const goingAway = new AbortController();
    goingAwayOf.set(carrier, goingAway);
    const ageMs = Math.round(this.maxAgeMs * (1 + ageJitter * (2 * Math.random() - 1)));
    let grace: NodeJS.Timeout | undefined;
    const age = setTimeout(() => {
      goingAway.abort();
      goAway();
      grace = setTimeout(cut, this.graceMs);
      grace.unref();
    }, ageMs);
    age.unref();
    carrier.once("close", () => {
      clearTimeout(age);
      clearTimeout(grace);
    });
  }
}
