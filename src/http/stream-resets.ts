import http2 from "node:http2";

/**
 * Rapid reset (CVE-2023-44487): a client opens streams and resets them at
 * once, in a tight loop, so the server starts work for each while the
 * client never waits for an answer. nghttp2 (1.61 in Node 20) counts every
 * RST_STREAM it receives, allows a burst of 1,000 and then 33 a second, and
 * past that sends GOAWAY; but Node 20 neither hears of it nor closes the
 * connection, which stays open and unread until the idle timeout, holding
 * its slot and megabytes of unread bytes in the kernel, after the server
 * has answered some 2,000 requests on it for nothing. So tally counts too,
 * with nghttp2's rate and a fifth of its burst: past it, the session's
 * further streams reach no handler, and the session is destroyed
 * (ENHANCE_YOUR_CALM) as soon as the read in progress is over. 200 is still
 * twice what a client needs whose 100 streams (--max-streams-per-connection)
 * are all cancelled at once, when their deadline passes together.
 */
const resetBurst = 200;

/** Resets a second a session may sustain once its burst is spent: nghttp2's rate. */
const resetsPerSecond = 33;

/** A session's token bucket of resets, and its newest stream. */
interface Allowance {
  tokens: number;
  at: number;
  newest: http2.ServerHttp2Stream | undefined;
}

/** Streams not to be handed to a handler: reset before any handler saw them, or on a session being cut. */
const skipped = new WeakSet<http2.ServerHttp2Stream>();

/** Streams whose reset has been counted, so that it is counted once. */
const counted = new WeakSet<http2.ServerHttp2Stream>();

/**
 * Counts the streams a session's client resets, and destroys the session
 * when it resets too many. A reset is a stream closed with an error code:
 * counted when it closes, or, since Node emits a reset stream's 'close'
 * only after it has read the whole burst of frames, when the session's next
 * stream arrives (nghttp2 read that RST_STREAM before this HEADERS).
 * REFUSED_STREAM is not counted: that is the server's own refusal (StreamLimits).
 */
export function countResets(session: http2.ServerHttp2Session): void {
  const allowance: Allowance = { tokens: resetBurst, at: Date.now(), newest: undefined };
  let cut = false;
  const settle = (stream: http2.ServerHttp2Stream) => {
    const code = stream.rstCode;
    if (code === undefined || code === http2.constants.NGHTTP2_NO_ERROR || code === http2.constants.NGHTTP2_REFUSED_STREAM || counted.has(stream)) return;
    counted.add(stream);
    const now = Date.now();
    allowance.tokens = Math.min(resetBurst, allowance.tokens + ((now - allowance.at) / 1000) * resetsPerSecond) - 1;
    allowance.at = now;
    if (allowance.tokens >= 0 || cut) return;
    cut = true;
    // Not from here: this may run while nghttp2 is still reading the
    // RST_STREAM, and destroying the session under it fails an assertion that
    // kills the process (Node 20.20). setImmediate waits until the read is over.
    setImmediate(() => {
      // With an error, as Node's typings ask for a code to come with one; the session's error listener drops it.
      if (!session.destroyed) session.destroy(new Error("the client reset streams faster than allowed"), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    });
  };
  // Before the server's own listener, which calls the handler.
  session.prependListener("stream", (stream: http2.ServerHttp2Stream) => {
    if (allowance.newest !== undefined) settle(allowance.newest);
    // A stream reset before it got here, or one on a session being cut
    // (nghttp2 goes on reading what the client sent, up to 2 MiB at a time
    // from libuv, until the session is destroyed): nothing to answer, and no
    // handler's work to start.
    if (cut || stream.destroyed || stream.closed) {
      settle(stream);
      skipped.add(stream);
      return;
    }
    allowance.newest = stream;
    stream.once("close", () => {
      settle(stream);
      if (allowance.newest === stream) allowance.newest = undefined;
    });
  });
}

/** Whether a new stream is not to be handed to a handler (see countResets). */
export function skipStream(stream: http2.ServerHttp2Stream): boolean {
  return skipped.has(stream);
}
