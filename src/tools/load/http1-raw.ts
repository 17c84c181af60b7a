import net from "node:net";
import type { HttpReply } from "./http-json.js";

/**
 * HTTP/1.1 keep-alive connections driven straight over TCP, for the
 * single-event REST workload. Node's http client spends more CPU per request
 * than the server does to answer it: on the 2-core machine it held the
 * bench to ~1,800 requests/s while wrk drove the same server past 8,000.
 * Like wrk, this writes each request as one prepared buffer and reads only
 * the status line, Content-Length and Retry-After of the answer.
 *
 * One request at a time per connection (no pipelining), so `connections`
 * is the concurrency, as with a client pool. Answers must carry
 * Content-Length, as the REST routes' do.
 */

interface Pending {
  resolve: (reply: HttpReply) => void;
  reject: (err: Error) => void;
}

const headerEnd = Buffer.from("\r\n\r\n");

class Connection {
  private socket: net.Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** Sends one request and resolves with its answer. */
  send(request: Buffer): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.open().write(request);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  /** The open socket, connecting again when the server closed the last one (Connection: close, restart). */
  private open(): net.Socket {
    if (this.socket !== undefined && !this.socket.destroyed) return this.socket;
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.buffered = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("connection closed before the answer")));
    this.socket = socket;
    return socket;
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(headerEnd);
    if (end < 0) return;
    const head = this.buffered.subarray(0, end).toString("latin1");
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(length)) {
      this.fail(new Error(`answer without Content-Length: ${head.split("\r\n", 1)[0]}`));
      this.socket?.destroy();
      return;
    }
    const bodyStart = end + headerEnd.length;
    if (this.buffered.length < bodyStart + length) return;
    const body = this.buffered.subarray(bodyStart, bodyStart + length).toString("utf8");
    this.buffered = this.buffered.subarray(bodyStart + length);
    const retryAfter = /\r\nretry-after: *(\d+)/i.exec(head)?.[1];
    const closing = /\r\nconnection: *close/i.test(head);
    const pending = this.pending;
    this.pending = undefined;
    if (closing) this.socket?.destroy();
    pending?.resolve({ status: Number(head.slice(9, 12)), retryAfterSeconds: retryAfter === undefined ? undefined : Number(retryAfter), body });
  }

  private fail(err: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }
}

/** A pool of raw keep-alive connections to one server. */
export class RawHttp1Pool {
  private readonly idle: Connection[];
  private readonly all: Connection[];
  /** The target's host[:port], sent as Host: a server on loopback refuses other names (DNS rebinding guard). */
  private readonly authority: string;

  constructor(baseUrl: string, connections: number) {
    const url = new URL(baseUrl);
    this.authority = url.host;
    this.all = Array.from({ length: connections }, () => new Connection(url.hostname, Number(url.port || 80)));
    this.idle = [...this.all];
  }

  /** POSTs `body` to `path` on an idle connection; callers keep at most `connections` requests in flight. */
  async post(path: string, body: Buffer, contentType = "application/json"): Promise<HttpReply> {
    const connection = this.idle.pop();
    if (connection === undefined) throw new Error("more requests in flight than connections");
    const head = `POST ${path} HTTP/1.1\r\nHost: ${this.authority}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
    try {
      return await connection.send(Buffer.concat([Buffer.from(head, "latin1"), body]));
    } finally {
      this.idle.push(connection);
    }
  }

  close(): void {
    for (const connection of this.all) connection.close();
  }
}
