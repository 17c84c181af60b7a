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
  private readonly recent = new Map<number, Position[]>();

  constructor(private readonly keepWhole = 1024) {}

  /** Records message number `message` (0, 1, ...) with the positions of its events in order. */
  add(positions: Position[]): void {
    const message = this.firsts.length;
    this.firsts.push(positions[0] ?? {});
    this.recent.set(message, positions);
    this.recent.delete(message - this.keepWhole);
  }

  /** Where event `event` of message `message` came from; undefined for a message never sent or forgotten. */
  find(message: number, event: number): Position | undefined {
    return this.recent.get(message)?.[event];
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
