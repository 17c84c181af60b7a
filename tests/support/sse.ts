/**
 * A Server-Sent Events reader over fetch's body stream, as a browser's
 * EventSource parses it (html.spec.whatwg.org, "Parsing an event stream"),
 * keeping what EventSource hides: comments (heartbeats) and every frame in
 * arrival order. Tests wait on conditions over the frames read so far.
 */

/** One frame: the lines up to a blank line. */
export interface SseFrame {
  /** The `id:` field, if the frame had one. */
  id?: string;
  /** The `event:` field, if any. */
  event?: string;
  /** The `data:` lines joined with "\n", if any. */
  data?: string;
  /** The `retry:` field, if any. */
  retry?: string;
  /** Comment lines (`: text`), without the colon and one leading space. */
  comments: string[];
}

/** A delivered event's data, as GET /events/stream writes it (the JSON of GET /events). */
export interface SseEventData {
  seq: number;
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  payload: unknown;
  received_at: string;
}

/** Parses complete frames off the front of `text`; answers them and the unparsed rest. */
export function parseFrames(text: string): { frames: SseFrame[]; rest: string } {
  const frames: SseFrame[] = [];
  const normalized = text.replace(/\r\n?/g, "\n");
  let at = 0;
  for (;;) {
    const end = normalized.indexOf("\n\n", at);
    if (end < 0) break;
    const frame: SseFrame = { comments: [] };
    const data: string[] = [];
    for (const line of normalized.slice(at, end).split("\n")) {
      if (line.startsWith(":")) {
        frame.comments.push(line.slice(1).replace(/^ /, ""));
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "id" || field === "event" || field === "retry") frame[field] = value;
    }
    if (data.length > 0) frame.data = data.join("\n");
    frames.push(frame);
    at = end + 2;
  }
  return { frames, rest: normalized.slice(at) };
}

/** A heartbeat comment's numbers, or undefined when the frame is not a heartbeat. */
export function heartbeatOf(frame: SseFrame): { headSeq: number; caughtUp: boolean; cursor: number } | undefined {
  for (const comment of frame.comments) {
    const match = /^heartbeat head_seq=(\d+) caught_up=(true|false)$/.exec(comment);
    if (match !== null) return { headSeq: Number(match[1]), caughtUp: match[2] === "true", cursor: Number(frame.id) };
  }
  return undefined;
}

/** The event a frame delivers (a `data:` frame with no `event:` name), or undefined. */
export function eventOf(frame: SseFrame): SseEventData | undefined {
  if (frame.data === undefined || frame.event !== undefined) return undefined;
  return JSON.parse(frame.data) as SseEventData;
}

/** An open event stream: frames read so far, and a way to wait for more. */
export class SseStream {
  readonly frames: SseFrame[] = [];
  /** Set once the body ends (the server closed it) or failed. */
  ended = false;
  endError: unknown;
  private readonly waiters = new Set<() => void>();
  private readonly abort = new AbortController();

  private constructor(readonly response: Response) {}

  /**
   * GETs `url` and, on 200 with an event stream, starts reading frames in the
   * background. Any other answer is returned as `refused` with its JSON body.
   */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
    const stream = new SseStream(response);
    stream.abort.signal.addEventListener("abort", () => abort.abort(), { once: true });
    if (response.status === 200 && (response.headers.get("content-type") ?? "").startsWith("text/event-stream")) void stream.pump();
    return stream;
  }

  /** The events delivered so far, in order. */
  get events(): SseEventData[] {
    return this.frames.map(eventOf).filter((e): e is SseEventData => e !== undefined);
  }

  /** The heartbeats so far, in order. */
  get heartbeats(): { headSeq: number; caughtUp: boolean; cursor: number }[] {
    return this.frames.map(heartbeatOf).filter((h) => h !== undefined);
  }

  /** Resolves once `condition` holds over the frames read; rejects if the stream ends first. */
  async until(condition: (stream: SseStream) => boolean, what: string): Promise<void> {
    while (!condition(this)) {
      if (this.ended) throw new Error(`event stream ended (${String(this.endError ?? "closed by the server")}) before ${what}; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** Stops reading and closes the connection, as a browser tab going away. */
  close(): void {
    this.abort.abort();
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of this.response.body! as unknown as AsyncIterable<Uint8Array>) {
        const { frames, rest } = parseFrames(pending + decoder.decode(chunk, { stream: true }));
        pending = rest;
        if (frames.length > 0) {
          this.frames.push(...frames);
          this.wake();
        }
      }
    } catch (err) {
      if (!this.abort.signal.aborted) this.endError = err;
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }
}
