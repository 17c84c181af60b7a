import type http from "node:http";
import http2 from "node:http2";

/**
 * Early answers: an answer given before the request's body has arrived whole
 * (a body over the limit, a refused token, a bad content type) must still
 * reach a client that writes its whole body before it reads anything, as
 * Python's urllib and requests, Java's HttpURLConnection and most SDKs do.
 */

/**
 * Bytes of a request body read and thrown away after an early answer, at
 * most: enough for a client that misjudged the limit by a wide margin
 * (several times --max-message-bytes), not so much that a client can make
 * the server read gigabytes for nothing. Reading costs no memory: the bytes
 * are dropped as they come.
 */
const lingerBytes = 64 * 1024 * 1024;

/** And for at most this long, as nginx's lingering_time. */
const lingerMs = 30_000;

/**
 * HTTP/1.1. Node closes a connection the moment an answer is written when
 * the client asked for that ("Connection: close", which urllib always
 * sends), while the client is still writing its body: its next write meets a
 * reset and it never reads the answer ("broken pipe"). So when an answer
 * starts before the body is in, the connection is kept and the rest of the
 * body read and discarded (within lingerBytes and lingerMs, nginx's
 * "lingering close"); then it is closed if the client asked for that, or kept
 * for its next request.
 */
export function lingerAfterEarlyAnswer(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined) return;
  const writeHead = res.writeHead;
  res.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
    res.writeHead = writeHead;
    if (!req.complete) linger(req, res);
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

function linger(req: http.IncomingMessage, res: http.ServerResponse): void {
  // Read before the headers are written: Node decides there whether the connection ends with this answer.
  res.shouldKeepAlive = true;
  const clientCloses = /(^|,)\s*close\s*(,|$)/i.test(req.headers.connection ?? "");
  const socket = req.socket;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  let left = lingerBytes;
  req.on("data", (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) socket.destroy();
  });
  req.once("end", () => {
    clearTimeout(timer);
    if (!clientCloses) return;
    if (res.writableFinished) socket.end();
    else res.once("finish", () => socket.end());
  });
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

/**
 * HTTP/2. A complete answer sent before the request's end is followed by
 * RST_STREAM with NO_ERROR, which tells the client to stop sending without
 * error (RFC 9113, section 8.1); flow control keeps what it may still send small.
 */
export function resetAfterEarlyAnswer(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
  res.once("finish", () => {
    if (!req.complete && !req.stream.closed) req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}
