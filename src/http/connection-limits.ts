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
 * Open connections per client address, at most. --max-connections alone
 * lets one client take every slot; with this, one address takes at most its
 * share, and the others still get in.
 */
export class AddressLimit {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  /**
   * Counts a new TCP connection against its address until it closes; false,
   * and nothing counted, when that address already has its maximum open (the
   * caller then closes the connection).
   */
  admit(socket: net.Socket): boolean {
    const address = clientAddress(socket);
    // A socket already gone would never report its close, and its count would stay.
    if (address === undefined || socket.destroyed) return false;
    const count = this.open.get(address) ?? 0;
    if (count >= this.maxPerAddress) return false;
    this.open.set(address, count + 1);
    socket.once("close", () => {
      const left = this.open.get(address)! - 1;
      if (left === 0) this.open.delete(address);
      else this.open.set(address, left);
    });
    return true;
  }
}
