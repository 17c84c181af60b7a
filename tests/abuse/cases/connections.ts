import net from "node:net";
import { hold, inBatches } from "../clients.js";
import { abuseCase, addressOf, caseTimeoutMs, holdMs, runCase, scale, tally, type Attackers } from "../harness.js";
import { preface } from "../h2-wire.js";

/** Connections an attacker makes from one address: under a per-address limit of 100, so only global limits can stop them. */
const perAddress = 50;

interface Held {
  socket: net.Socket;
  kind: string;
  connected: boolean;
  /** Closed by the server (or failed) before the attacker let go. */
  lost: boolean;
}

/**
 * Opens a connection from `localAddress`, held by `attackers`; resolves once
 * connected (or failed), writing `first` if given.
 */
function open(port: number, localAddress: string, kind: string, first: Buffer | undefined, attackers: Attackers): Promise<Held> {
  return new Promise((resolve) => {
    const socket = attackers.add(net.connect({ host: "127.0.0.1", port, localAddress }));
    const held: Held = { socket, kind, connected: false, lost: false };
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    socket.once("close", () => {
      if (!attackers.released) held.lost = true;
      resolve(held);
    });
    socket.once("connect", () => {
      held.connected = true;
      if (first !== undefined) socket.write(first);
      resolve(held);
    });
  });
}

/**
 * Case 5, idle-connection flood: 1,500 connections (3,000 long) from many
 * addresses, 50 each, that send nothing, only the HTTP/2 preface, or an
 * HTTP/1.1 request line and one header without the blank line that ends them.
 * Can 127.0.0.1 still get GET /health answered?
 */
export function idleConnectionFlood(): void {
  abuseCase(
    "5. idle-connection flood: silent, preface-only and half-header connections from many addresses",
    { timeout: caseTimeoutMs(60, 300) },
    async (server) => {
      const total = scale(1_500, 3_000);
      return runCase("5 idle-connection-flood", server, async (attackers) => {
        const kinds: [string, Buffer | undefined][] = [
          ["silent", undefined],
          ["h2-preface", preface],
          ["h1-partial-header", Buffer.from(`GET /health HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n`)],
        ];
        const held: Held[] = [];
        const started = performance.now();
        await inBatches(total, 200, async (i) => {
          const [kind, first] = kinds[i % kinds.length]!;
          held.push(await open(server.port, addressOf(i, perAddress), kind, first, attackers));
        });
        const openingMs = Math.round(performance.now() - started);
        const openAfterConnecting = held.filter((h) => h.connected && !h.lost).length;
        await hold(holdMs(4, 40));
        return {
          attempted: total,
          addresses: Math.ceil(total / perAddress),
          connected: held.filter((h) => h.connected).length,
          openAfterConnecting,
          openAtEnd: held.filter((h) => h.connected && !h.lost).length,
          closedByServer: tally(held.filter((h) => h.lost).map((h) => h.kind)),
          msToOpen: openingMs,
        };
      });
    },
  );
}

/**
 * Case 10, slow bodies: 200 HTTP/1.1 POST /publish requests announcing a
 * 4,000,000-byte body. "trickle": a few bytes per second from the start
 * (slowloris for bodies). "stalled-near-full": 3,900,000 bytes at once, then
 * a few bytes per second: the server holds nearly every body whole.
 */
export function slowBodies(): void {
  for (const variant of ["trickle", "stalled-near-full"] as const) {
    abuseCase(
      `10. slow bodies (${variant}): 200 POST /publish announcing 4,000,000 bytes, then a few bytes per second`,
      { timeout: caseTimeoutMs(60, 300) },
      async (server) => {
        // Near-full bodies: 100 × 3.9 MB already shows whether the server holds them all.
        const connections = variant === "trickle" ? scale(200, 400) : scale(100, 400);
        const declared = 4_000_000;
        const upfront = variant === "trickle" ? 1 : 3_900_000;
        return runCase(`10 slow-bodies-${variant}`, server, async (attackers) => {
          const head = (port: number) => Buffer.from(`POST /publish HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`);
          // One shared body prefix: the attacker's memory is not the point. A JSON array of spaces stays valid as it grows.
          const body = Buffer.alloc(upfront, 0x20);
          body[0] = 0x5b; // "["
          const held: Held[] = [];
          let bytes = 0;
          let ticker: NodeJS.Timeout | undefined;
          try {
            await inBatches(connections, 100, async (i) => {
              const h = await open(server.port, addressOf(i, perAddress), variant, head(server.port), attackers);
              held.push(h);
              if (h.connected) {
                h.socket.write(body);
                bytes += body.length;
              }
            });
            // A few bytes per second on every connection.
            ticker = setInterval(() => {
              for (const h of held) {
                if (!h.lost && h.socket.writable) {
                  h.socket.write("   ");
                  bytes += 3;
                }
              }
            }, 1000);
            await hold(holdMs(4, 60));
            return {
              connections,
              declaredBytes: declared,
              bytesUpfront: upfront,
              mibSent: Math.round(bytes / (1024 * 1024)),
              connected: held.filter((h) => h.connected).length,
              closedByServer: held.filter((h) => h.lost).length,
            };
          } finally {
            clearInterval(ticker);
          }
        });
      },
    );
  }
}
