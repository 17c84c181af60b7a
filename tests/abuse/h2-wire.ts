import net from "node:net";
import type { Duplex } from "node:stream";

/**
 * HTTP/2 frames written by hand (RFC 9113, HPACK RFC 7541), for attacks a
 * conforming client library will not make: resetting streams as fast as they
 * open, floods of PING and SETTINGS, header blocks that never end.
 */

export const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FrameType = { data: 0, headers: 1, rstStream: 3, settings: 4, ping: 6, goaway: 7, windowUpdate: 8, continuation: 9 } as const;
export const Flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4 } as const;
/** Error codes used here. */
export const ErrorCode = { noError: 0, cancel: 8 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settingsFrame(settings: [id: number, value: number][] = []): Buffer {
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FrameType.settings, 0, 0, payload);
}

export const settingsAck = frame(FrameType.settings, Flag.ack, 0);

export function rstStreamFrame(streamId: number, code: number = ErrorCode.cancel): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.rstStream, 0, streamId, payload);
}

export function pingFrame(data: Buffer = Buffer.alloc(8), ack = false): Buffer {
  return frame(FrameType.ping, ack ? Flag.ack : 0, 0, data);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment);
  return frame(FrameType.windowUpdate, 0, streamId, payload);
}

// HPACK, without Huffman coding and, unless asked, without the dynamic table.

/** An HPACK integer with an N-bit prefix; `flags` are the first byte's bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, flags = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const bytes = [flags | max];
  value -= max;
  while (value >= 128) {
    bytes.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** An entry of the static or dynamic table, by index. */
export function indexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

/** Literal without indexing, name from the static table (":authority" 1, ":path" 4, "content-type" 31). */
export function literalIndexedName(nameIndex: number, value: string): Buffer {
  return Buffer.concat([hpackInt(nameIndex, 4), hpackString(value)]);
}

/** Literal without indexing, new name. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), hpackString(name), hpackString(value)]);
}

/** Literal with incremental indexing, new name: it enters the dynamic table as index 62. */
export function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** A request's header block from static-table entries and literals: GET or POST, http, the path and authority given. */
export function requestBlock(method: "GET" | "POST", path: string, authority: string, extra: Buffer[] = []): Buffer {
  // Static table: 2 ":method GET", 3 ":method POST", 6 ":scheme http".
  return Buffer.concat([indexed(method === "GET" ? 2 : 3), indexed(6), literalIndexedName(4, path), literalIndexedName(1, authority), ...extra]);
}

export function headersFrame(streamId: number, block: Buffer, flags: number = Flag.endHeaders | Flag.endStream): Buffer {
  return frame(FrameType.headers, flags, streamId, block);
}

export function continuationFrame(streamId: number, block: Buffer, endHeaders = false): Buffer {
  return frame(FrameType.continuation, endHeaders ? Flag.endHeaders : 0, streamId, block);
}

/** A raw HTTP/2 connection: the preface and an empty SETTINGS are written, frames coming back are parsed and counted. */
export interface RawH2 {
  socket: net.Socket;
  /** Resolves once connected and the preface is written. */
  ready: Promise<void>;
  /** GOAWAY's error code, once the server sent one. */
  goaway: number | undefined;
  /** Set once the socket closed (either side). */
  closed: boolean;
  /** Frames received, by type. */
  received: Map<number, number>;
  /** RST_STREAM codes received, with counts. */
  resets: Map<number, number>;
  /** HEADERS frames received (responses). */
  responses: number;
  /** Bytes read from the server. */
  bytesReceived: number;
  /** Write, waiting for the socket to drain when its buffer is full; resolves false once the connection is closed. */
  write(bytes: Buffer): Promise<boolean>;
  /** Resolves when the socket closes. */
  whenClosed: Promise<void>;
  /** Ends the connection at once. */
  destroy(): void;
}

export interface RawH2Options {
  port: number;
  localAddress: string;
  /** Answer the server's SETTINGS with an ACK, as a client must (default true). */
  ackSettings?: boolean;
  /** Do not read: the socket is paused from the start, the server's frames pile up until socket.resume() (default false). */
  neverRead?: boolean;
  /** Our SETTINGS. */
  settings?: [number, number][];
}

export function rawH2(options: RawH2Options): RawH2 {
  const socket = net.connect({ host: "127.0.0.1", port: options.port, localAddress: options.localAddress });
  socket.on("error", () => undefined);
  const conn: RawH2 = {
    socket,
    ready: new Promise((resolve, reject) => {
      socket.once("connect", () => {
        socket.write(Buffer.concat([preface, settingsFrame(options.settings ?? [])]));
        resolve();
      });
      socket.once("close", () => reject(new Error(`connection from ${options.localAddress} closed before it was established`)));
    }),
    goaway: undefined,
    closed: false,
    received: new Map(),
    resets: new Map(),
    responses: 0,
    bytesReceived: 0,
    whenClosed: new Promise((resolve) => socket.once("close", () => resolve())),
    write(bytes) {
      if (conn.closed || socket.destroyed) return Promise.resolve(false);
      if (socket.write(bytes)) return Promise.resolve(true);
      return drained(socket);
    },
    destroy() {
      socket.destroy();
    },
  };
  conn.ready.catch(() => undefined);
  socket.once("close", () => (conn.closed = true));
  let pending: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    conn.bytesReceived += chunk.length;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const type = pending[3]!;
      const flags = pending[4]!;
      const payload = pending.subarray(9, 9 + length);
      conn.received.set(type, (conn.received.get(type) ?? 0) + 1);
      if (type === FrameType.settings && (flags & Flag.ack) === 0 && options.ackSettings !== false) socket.write(settingsAck);
      if (type === FrameType.goaway && payload.length >= 8) conn.goaway = payload.readUInt32BE(4);
      if (type === FrameType.rstStream && payload.length >= 4) conn.resets.set(payload.readUInt32BE(0), (conn.resets.get(payload.readUInt32BE(0)) ?? 0) + 1);
      if (type === FrameType.headers) conn.responses++;
      pending = pending.subarray(9 + length);
    }
    if (pending.length > 0) pending = Buffer.from(pending); // do not keep the whole chunk alive for a partial frame
  });
  if (options.neverRead) socket.pause();
  return conn;
}

/** Resolves true when `stream` can take more writes, false when it closed first. */
export function drained(stream: Duplex): Promise<boolean> {
  if (stream.destroyed || stream.closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (open: boolean) => {
      stream.off("drain", onDrain);
      stream.off("close", onClose);
      resolve(open);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    stream.on("drain", onDrain);
    stream.on("close", onClose);
  });
}

/**
 * Writes `next()` again and again, each write counting `step` towards
 * `limit`, until the limit is reached or the connection is closed; resolves
 * with what was counted. A flood waits for the socket to drain, so it goes as
 * fast as the server reads.
 */
export async function flood(conn: RawH2, limit: number, step: number, next: () => Buffer): Promise<number> {
  let sent = 0;
  while (sent < limit && !conn.closed) {
    if (!(await conn.write(next()))) break;
    sent += step;
  }
  return sent;
}

/** Name of an HTTP/2 error code, for reports. */
export function h2ErrorName(code: number | undefined): string | undefined {
  if (code === undefined) return undefined;
  const names = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"];
  return names[code] ?? String(code);
}
