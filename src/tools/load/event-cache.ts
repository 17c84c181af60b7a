import { eventFields, jsonEvent, topicNames } from "./events.js";
import { ProtoWriter } from "../../codec/proto-writer.js";
import { writeEvent } from "./proto-encode.js";

/**
 * The encoded form of each event of a seeded workload, made once. Re-sends
 * and later scenarios of the same seed reuse the bytes instead of encoding
 * again: a load generator that encodes while it sends measures itself.
 *
 * Protobuf encodings live end to end in one growing buffer with an offset
 * table (a million small Uint8Arrays would cost more in object headers than
 * in bytes); JSON texts are kept as strings, made only when a JSON
 * transport asks.
 */
export class EventCache {
  private readonly topics: string[];
  private readonly arena = new ProtoWriter(1 << 20);
  /** offsets[k]..offsets[k + 1] holds event indexBase + k; entries up to `encoded` are valid. */
  private offsets = new Float64Array(1024);
  private encoded = 0;
  private readonly json: string[] = [];

  constructor(
    readonly seed: number,
    /** How many topics (named by topicNames), or the names themselves. */
    topics: number | readonly string[],
    /** Number of the first event this cache holds. */
    readonly indexBase = 0,
  ) {
    this.topics = typeof topics === "number" ? topicNames(topics) : [...topics];
  }

  /** The protobuf encoding of event `index` (a view into the cache: do not keep it past the cache). */
  proto(index: number): Uint8Array {
    const k = index - this.indexBase;
    if (k < 0) throw new RangeError(`event ${index} is below this cache's first event ${this.indexBase}`);
    while (this.encoded <= k) this.encodeNext();
    return this.arena.buffer.subarray(this.offsets[k]!, this.offsets[k + 1]!);
  }

  /** The JSON text of event `index`, as REST and Connect JSON carry it. */
  jsonText(index: number): string {
    const k = index - this.indexBase;
    return (this.json[k] ??= JSON.stringify(jsonEvent(eventFields(this.seed, index, this.topics))));
  }

  private encodeNext(): void {
    const k = this.encoded;
    writeEvent(this.arena, eventFields(this.seed, this.indexBase + k, this.topics));
    if (k + 2 > this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[k + 1] = this.arena.length;
    this.encoded++;
  }
}
