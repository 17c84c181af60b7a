import { Code } from "@connectrpc/connect";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/**
 * Requests as bytes on the wire, below any RPC client: what hostile or broken
 * clients send (corrupt frames, wrong content types, huge headers) cannot be
 * said through a well-behaved client. One connection per request, so a
 * connection the server closes (GOAWAY, 431) cannot spoil the next request.
 */

/** What came back, whatever the protocol. */
export interface RawResponse {
  /** HTTP status; 0 when the stream was reset before any response. */
  status: number;
  /** HTTP/1.1 reason phrase; "" over HTTP/2, which has none. */
  statusText: string;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** HTTP/2 RST_STREAM code, when the server reset the stream; 0 otherwise. */
  rstCode: number;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/** One request over a fresh HTTP/1.1 connection. */
export function http1Request(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(request.path, baseUrl);
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: request.method ?? "POST",
        agent: false,
        headers: { ...(body !== undefined && { "content-length": String(body.length) }), ...request.headers },
        // Node's client refuses to *read* big headers by default; our requests are what may be big.
        maxHeaderSize: 64 * 1024,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            headers: flatten(res.headers),
            trailers: flatten(res.trailers),
            body: Buffer.concat(chunks),
            rstCode: 0,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One request over a fresh HTTP/2 cleartext session; a reset stream resolves with its code instead of failing. */
export function http2Request(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Let the test send a header block bigger than the server allows: finding out what the server does is the point.
    const session = http2.connect(baseUrl, { maxSendHeaderBlockLength: 1024 * 1024 });
    session.on("error", () => undefined);
    const stream = session.request({ ":method": request.method ?? "POST", ":path": request.path, ...request.headers });
    let headers: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (headers = flatten(h)));
    stream.on("trailers", (t) => (trailers = flatten(t)));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => {
      session.close();
      const status = Number(headers[":status"] ?? 0);
      if (status === 0 && stream.rstCode === 0) reject(new Error(`HTTP/2 stream to ${request.path} closed without a response`));
      resolve({ status, statusText: "", headers, trailers, body: Buffer.concat(chunks), rstCode: stream.rstCode ?? 0 });
    });
    stream.end(request.body === undefined ? undefined : Buffer.from(request.body));
  });
}

function flatten(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders | NodeJS.Dict<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/** A gRPC length-prefixed message: flags byte, big-endian length, bytes. `declaredLength` lies about the length. */
export function grpcFrame(message: Uint8Array, flags = 0, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, message]);
}

/** Name of an HTTP/2 RST_STREAM error code ("ENHANCE_YOUR_CALM"). */
export function rstCodeName(code: number): string {
  const entry = Object.entries(http2.constants).find(([name, value]) => name.startsWith("NGHTTP2_") && value === code && !name.startsWith("NGHTTP2_SESSION"));
  return entry === undefined ? String(code) : entry[0].replace(/^NGHTTP2_/, "");
}

/**
 * The status a gRPC or gRPC-Web response carries: trailers, the trailer frame
 * of gRPC-Web, or headers (trailers-only). `code` is 0 for OK, else a Code.
 */
export function grpcStatusOf(res: RawResponse): { code: number; message: string } | undefined {
  const fields = { ...res.headers, ...grpcWebTrailer(res), ...res.trailers };
  if (fields["grpc-status"] === undefined) return undefined;
  return { code: Number(fields["grpc-status"]), message: decodeURIComponent(fields["grpc-message"] ?? "") };
}

/** gRPC-Web sends trailers as a last frame with flag 0x80, holding "name: value" lines. */
function grpcWebTrailer(res: RawResponse): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^application\/grpc-web/.test(res.headers["content-type"] ?? "")) return out;
  let at = 0;
  while (at + 5 <= res.body.length) {
    const flags = res.body[at]!;
    const length = res.body.readUInt32BE(at + 1);
    const data = res.body.subarray(at + 5, at + 5 + length);
    if ((flags & 0x80) !== 0) {
      for (const line of data.toString("utf8").split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    }
    at += 5 + length;
  }
  return out;
}

/** Connect's mapping from code to HTTP status for unary errors (connectrpc.com/docs/protocol#error-codes). */
export function connectHttpStatus(code: Code): number {
  const statuses: Partial<Record<Code, number>> = {
    [Code.Canceled]: 499,
    [Code.InvalidArgument]: 400,
    [Code.DeadlineExceeded]: 504,
    [Code.NotFound]: 404,
    [Code.AlreadyExists]: 409,
    [Code.PermissionDenied]: 403,
    [Code.ResourceExhausted]: 429,
    [Code.FailedPrecondition]: 400,
    [Code.Aborted]: 409,
    [Code.OutOfRange]: 400,
    [Code.Unimplemented]: 501,
    [Code.Unavailable]: 503,
    [Code.Unauthenticated]: 401,
  };
  return statuses[code] ?? 500;
}

/**
 * A PublishRequest holding one event whose payload nests `depth` objects
 * ({"a":{"a":...}}), encoded by hand from the inside out: protobuf-es's
 * encoder recurses, and 10,000 levels would exhaust the test's own stack.
 */
export function deepPayloadPublishRequest(depth: number, eventId: string): Buffer {
  const field = (number: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([(number << 3) | 2]), varint(bytes.length), bytes]);
  const entry = (value: Uint8Array) => field(1, Buffer.concat([field(1, Buffer.from("a")), field(2, value)])); // Struct{fields: {"a": value}}
  let value: Buffer = Buffer.from([0x08, 0x00]); // Value{null_value}
  for (let level = 1; level < depth; level++) value = field(5, entry(value)); // Value{struct_value}
  const timestamp = Buffer.from([0x08, ...varint(1_761_300_000)]); // Timestamp{seconds}
  const event = Buffer.concat([field(1, Buffer.from("orders")), field(2, Buffer.from(eventId)), field(3, timestamp), field(4, Buffer.from("test")), field(5, entry(value))]);
  return field(1, event);
}

/** A protobuf varint (lengths and tags of hand-built messages). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * One HTTP/1.1 request written on a bare socket, in 8 KiB pieces as a client
 * would, reading whatever comes back until the server closes. For requests
 * the server refuses before reading them whole (a header block over its
 * limit): it answers and closes with our bytes unread, which resets the
 * connection. Node's HTTP client, still writing, reports that reset instead of
 * the answer; here writing stops once an answer has arrived. Should the reset
 * still overtake the answer, the exchange is tried again, a few times.
 */
export async function http1RawExchange(baseUrl: string, request: RawRequest, attempts = 5): Promise<RawResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await http1RawExchangeOnce(baseUrl, request);
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

/** Piece size for http1RawExchange: a typical socket write. */
const rawWriteBytes = 8 * 1024;

function http1RawExchangeOnce(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(request.path, baseUrl);
  const body = Buffer.from(request.body ?? "");
  const head = [`${request.method ?? "POST"} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, `content-length: ${body.length}`, "connection: close"];
  for (const [name, value] of Object.entries(request.headers ?? {})) head.push(`${name}: ${value}`);
  const bytes = Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), body]);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let failure: Error | undefined;
    let closed = false;
    const socket = net.connect(Number(url.port), url.hostname);
    const finish = () => {
      closed = true;
      const text = Buffer.concat(chunks);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) {
        reject(new Error(`no HTTP response to ${request.path} before the connection closed (${text.length} bytes read; ${failure?.message ?? "no error"})`));
        return;
      }
      const [statusLine = "", ...lines] = text.subarray(0, end).toString("latin1").split("\r\n");
      const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(match?.[1] ?? 0), statusText: match?.[2] ?? "", headers, trailers: {}, body: text.subarray(end + 4), rstCode: 0 });
    };
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer arrived is the expected end here.
    socket.on("error", (err) => (failure = err));
    socket.on("close", finish);
    const writeFrom = (offset: number) => {
      if (closed || chunks.length > 0) return;
      if (offset >= bytes.length) {
        socket.end();
        return;
      }
      socket.write(bytes.subarray(offset, offset + rawWriteBytes), () => writeFrom(offset + rawWriteBytes));
    };
    socket.once("connect", () => writeFrom(0));
  });
}
