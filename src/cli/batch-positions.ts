import type { Position } from "./event-input.js";

/**
 * Remembers where in the input each event of each sent stream message came
 * from, so a refusal naming `messages[i].events[j]` can be told as a line
 * of the input. The server refuses a message when it reads it, and HTTP/2
 * flow control keeps the client at most a window ahead of that, so only the
 * most recent messages are kept whole; of older ones only the first position
 * is kept, which still says where the batch began.
 */
export class BatchPositions {
  private readonly firsts: Position[] = [];
  /** Kept as numbers, not objects: a million events in flight must not cost a million objects. NaN and -1 stand for "none". */
  private readonly recent = new Map<number, { lines: Float64Array; indexes: Int32Array }>();

  constructor(private readonly keepWhole = 1024) {}

  /** Records message number `message` (0, 1, ...) with the positions of its events in order. */
  add(positions: Position[]): void {
    const message = this.firsts.length;
    this.firsts.push(positions[0] ?? {});
    const lines = new Float64Array(positions.length);
    const indexes = new Int32Array(positions.length);
    positions.forEach((p, i) => {
      lines[i] = p.line ?? Number.NaN;
      indexes[i] = p.index ?? -1;
    });
    this.recent.set(message, { lines, indexes });
    this.recent.delete(message - this.keepWhole);
  }

  /** Where event `event` of message `message` came from; undefined for a message never sent or forgotten. */
  find(message: number, event: number): Position | undefined {
    const kept = this.recent.get(message);
    if (kept === undefined || event >= kept.lines.length) return undefined;
    const line = kept.lines[event]!;
    const index = kept.indexes[event]!;
    return { ...(Number.isNaN(line) ? {} : { line }), ...(index < 0 ? {} : { index }) };
  }

  /** Where message `message` began. */
  startOf(message: number): Position | undefined {
    return this.firsts[message];
  }

  /** How many messages were recorded. */
  get count(): number {
    return this.firsts.length;
  }
}
