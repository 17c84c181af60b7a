import type net from "node:net";

/** How an IPv4 client looks on a dual-stack socket: `::ffff:192.0.2.1`. */
const ipv4Mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/**
 * The client address a connection counts against: IPv4-mapped IPv6
 * addresses as plain IPv4, so one client is one client whichever way the
 * listening socket sees it. Undefined when the socket is already gone.
 */
export function clientAddress(socket: net.Socket): string | undefined {
  const address = socket.remoteAddress;
  if (address === undefined) return undefined;
  return ipv4Mapped.exec(address)?.[1] ?? address.toLowerCase();
}

/**
 * What every view of one TCP connection shows alike: the TCP socket the
 * listener accepted, the TLS socket wrapping it, and an HTTP/2 session's
 * socket proxy all report the same two ends.
 */
export interface ConnectionEnds {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/**
 * Names a connection by its two ends, unique among open connections. The
 * server learns that a connection has been served from its HTTP layer, which
 * holds a TLS socket or a session's proxy rather than the TCP socket it
 * accepted, and these ends are the one thing all of them report. Undefined
 * when the socket is already gone.
 */
function connectionKey(connection: ConnectionEnds): string | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = connection;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return undefined;
  return `${remoteAddress} ${remotePort} ${localAddress} ${localPort}`;
}

/** A connection not served yet, and what gives back everything it holds. */
interface Unserved {
  socket: net.Socket;
  release: () => void;
}

/**
 * --max-connections and --max-connections-per-address, enforced as each TCP
 * connection arrives (before its TLS handshake), and counted until it closes.
 *
 * At --max-connections, the newcomer takes the slot of the connection that
 * has waited longest without being served: one that has sent no request yet
 * (silent, half a handshake, an HTTP/2 preface or SETTINGS with no stream,
 * an HTTP/1.1 request whose headers are not all in). Such a connection costs
 * its client nothing and holds a slot, so a flood of them from many
 * addresses (which the per-address limit cannot stop) would otherwise lock
 * every real client out until the silent timeout. A real client writes its
 * request as soon as it has connected, so it is served long before a whole
 * server's worth of later arrivals could push it out. Only when every
 * connection has been served is the newcomer refused.
 *
 * Node's own net.Server.maxConnections cannot do this: it closes the
 * newcomer before anyone can choose. So the listener has no maximum, and
 * this is asked on every 'connection'.
 */
export class ConnectionLimits {
  /** Connections holding a slot. */
  private open = 0;
  private readonly openPerAddress = new Map<string, number>();
  /**
   * Connections not served yet, by connectionKey, oldest first: a Map
   * iterates in insertion order, so the one to evict is the first, found in
   * O(1) (amortized) however many are waiting.
   */
  private readonly unserved = new Map<string, Unserved>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerAddress: number,
  ) {}

  /**
   * Counts a new TCP connection until it closes, closing the longest-waiting
   * unserved connection first if the server is full; false, and nothing
   * counted or closed, when its address has its maximum open, or when the
   * server is full of connections that have all been served (the caller
   * then closes the newcomer).
   */
  admit(socket: net.Socket): boolean {
    const address = clientAddress(socket);
    const key = connectionKey(socket);
    // A socket already gone would never report its close, and its count would stay.
    if (address === undefined || key === undefined || socket.destroyed) return false;
    const fromAddress = this.openPerAddress.get(address) ?? 0;
    // Before any eviction: a newcomer its own address's limit refuses must not cost another client its connection.
    if (fromAddress >= this.maxPerAddress) return false;
    if (this.open >= this.maxConnections && !this.evictLongestWaiting()) return false;

    this.open++;
    this.openPerAddress.set(address, fromAddress + 1);
    let counted = true;
    // Once, whichever comes first: the connection's close, or its eviction (which frees the slot at once, not a loop turn later at its close).
    const release = () => {
      if (!counted) return;
      counted = false;
      this.open--;
      const left = this.openPerAddress.get(address)! - 1;
      if (left === 0) this.openPerAddress.delete(address);
      else this.openPerAddress.set(address, left);
      if (this.unserved.get(key)?.socket === socket) this.unserved.delete(key);
    };
    this.unserved.set(key, { socket, release });
    socket.once("close", release);
    return true;
  }

  /**
   * A request has arrived on this connection (HTTP/1.1: its headers are all
   * in; HTTP/2: a stream is open): it is being served, and is never evicted
   * from now on. Takes the TCP socket, its TLS socket or a session's socket.
   */
  served(connection: ConnectionEnds): void {
    // Called on every HTTP/1.1 request: with no connection waiting, not even the key is needed.
    if (this.unserved.size === 0) return;
    const key = connectionKey(connection);
    if (key !== undefined) this.unserved.delete(key);
  }

  /** Closes the connection that has waited longest without a request; false when every connection has had one. */
  private evictLongestWaiting(): boolean {
    const oldest = this.unserved.values().next();
    if (oldest.done === true) return false;
    oldest.value.release();
    oldest.value.socket.destroy();
    return true;
  }
}
