import type http from "node:http";
import http2 from "node:http2";

/**
 * Early answers: an answer given before the request's body has arrived whole
 * (a body over the limit, a refused token, a bad content type) must still
 * reach a client that writes its whole body before it reads anything, as
 * Python's urllib and requests, Java's HttpURLConnection and most SDKs do.
 * So the rest of the body is read and dropped after such an answer, within
 * bounds (nginx calls it lingering close).
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

/** Reads and drops the rest of a request body; calls `cutOff` if it goes past the bounds. */
function discardRest(req: http.IncomingMessage | http2.Http2ServerRequest, cutOff: () => void): void {
  const timer = setTimeout(cutOff, lingerMs);
  timer.unref();
  let left = lingerBytes;
  req.on("data", (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cutOff();
  });
  req.once("end", () => clearTimeout(timer));
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

/**
 * HTTP/1.1. Node closes a connection the moment an answer is written when
 * the client asked for that ("Connection: close", which urllib always
 * sends), while the client is still writing its body: its next write meets a
 * reset and it never reads the answer ("broken pipe"). So when an answer
 * starts before the body is in, the connection is kept, the rest of the body
 * dropped, and then the connection is closed if the client asked for that,
 * or kept for its next request.
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
  // Set before the headers are written: that is when Node decides whether the connection ends with this answer.
  res.shouldKeepAlive = true;
  const socket = req.socket;
  discardRest(req, () => socket.destroy());
  if (!/(^|,)\s*close\s*(,|$)/i.test(req.headers.connection ?? "")) return;
  req.once("end", () => {
    if (res.writableFinished) socket.end();
    else res.once("finish", () => socket.end());
  });
}

/**
 * HTTP/2. A client blocked by flow control on a body nobody reads would wait
 * for the rest of its stream's timeout, answer in hand; so once the answer's
 * side of the stream has ended, the rest of the body is read and dropped,
 * which keeps the client's window open until it is done. A stream that goes
 * past the bounds is reset with CANCEL. (The stream's own "finish", not the
 * response's: Node emits that one only when the stream closes.)
 */
export function drainAfterEarlyAnswer(req: http2.Http2ServerRequest): void {
  req.stream.once("finish", () => {
    if (!req.complete) discardRest(req, () => req.stream.close(http2.constants.NGHTTP2_CANCEL));
  });
}
