import type http from "node:http";
import type http2 from "node:http2";

/**
 * Per-stream flow-control window we grant clients: what a stream that is not
 * being read (it waits for the memory budget or the queue) may still have
 * buffered, outside the budget. Node acknowledges connection-level data as
 * it arrives, so this window, not the connection's, is what bounds a
 * paused stream. 256 KiB holds a 500-event batch in flight; with 1 MiB, 200
 * waiting streams took the server past 450 MiB (tests/abuse).
 */
const streamWindowBytes = 256 * 1024;

/**
 * Connection-level window, set on each session as it starts. Node's default
 * 64 KiB throttles large unary requests (raising it took 1,000-event unary
 * calls from 84k to 150k events/s). It bounds nothing while streams wait:
 * Node consumes connection-level data as it arrives.
 */
export const connectionWindowBytes = 16 * 1024 * 1024;

/** Header block limit for both protocols; gRPC's usual 8 KiB plus room for auth tokens. */
export const maxHeaderBytes = 16 * 1024;

/**
 * What nghttp2 may hold for one session (header tables, frames and answers
 * queued to be written), in MiB, before it refuses the session's new streams.
 * Above Node's default of 10 so that a connection writing several large
 * Events pages to a slow reader keeps being served; still bounded per
 * connection, as the flow-control windows are.
 */
const maxSessionMemoryMiB = 64;

/** tally's HTTP/1.1 settings apart from its timeouts; the bench's REST floor (tools/bench/stub-server.ts) serves with the same. */
export const http1ServerSettings: http.ServerOptions = { maxHeaderSize: maxHeaderBytes, noDelay: true };

/**
 * tally's HTTP/2 settings, with `maxStreamsPerConnection` advertised as
 * SETTINGS_MAX_CONCURRENT_STREAMS; the bench's latency floor
 * (tools/bench/stub-server.ts) serves with the same.
 *
 * Against floods Node's defaults stay, named here so that a change of
 * default cannot pass unnoticed: nghttp2 (1.61 in Node 20) answers a client
 * that resets more than 1,000 streams (then 33 a second) with GOAWAY, which
 * Node 20 does not follow by closing the connection (stream-resets.ts does);
 * a SETTINGS or PING flood fills nghttp2's queue of acknowledgements, and
 * past 1,000 it ends the session.
 */
export function http2ServerSettings(maxStreamsPerConnection: number): http2.ServerOptions {
  return {
    settings: { initialWindowSize: streamWindowBytes, maxConcurrentStreams: maxStreamsPerConnection, maxHeaderListSize: maxHeaderBytes },
    maxSessionMemory: maxSessionMemoryMiB,
    // Frames nghttp2 finds invalid (on closed streams, bad sizes) before the session is closed.
    maxSessionInvalidFrames: 1000,
    // Streams Node itself refuses (over maxSessionMemory) before it closes the session.
    maxSessionRejectedStreams: 100,
    // Entries in one SETTINGS frame; the protocol defines 7.
    maxSettings: 32,
  };
}
