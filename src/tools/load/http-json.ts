import http from "node:http";

/**
 * JSON over HTTP/1.1 with keep-alive, as the older services' clients, curl
 * and browsers' Connect JSON calls reach the server. One socket per
 * concurrent request, like a client pool.
 */

/** What one HTTP request answered. */
export interface HttpReply {
  status: number;
  /** Seconds the server asked us to wait (Retry-After on 503), when it did. */
  retryAfterSeconds: number | undefined;
  body: string;
}

/** A keep-alive pool of `sockets` connections with Nagle off (small requests must not wait for delayed ACKs). */
export function keepAliveAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, noDelay: true });
}

/** POSTs `body` to `url` and collects the whole answer. */
export function postJson(agent: http.Agent, url: URL, body: Buffer, contentType = "application/json"): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { "content-type": contentType, "content-length": body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          resolve({
            status: res.statusCode ?? 0,
            retryAfterSeconds: retryAfter === undefined ? undefined : Number(retryAfter),
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The Connect code names ghz-style reports use, from the HTTP status that carried them. */
export function statusNameOfHttp(status: number): string {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "InvalidArgument";
    case 408:
      return "DeadlineExceeded";
    case 413:
      return "ResourceExhausted";
    case 415:
      return "InvalidArgument";
    case 429:
    case 502:
    case 503:
    case 504:
      return "Unavailable";
    default:
      return `HTTP${status}`;
  }
}
