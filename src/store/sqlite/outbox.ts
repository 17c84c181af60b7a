import type { EventRecord } from "../types.js";
import { packBatch } from "./packed-batch.js";
import type { ToWriter } from "./writer-protocol.js";

/** Events that make the outbox worth a message of its own. */
const handOverEvents = 100;

/**
 * Batches on their way to the writer thread. Small batches handed in during
 * one event loop turn go together when it ends: every single-event request
 * whose bytes arrived in the turn shares one message (one message each cost
 * single-event REST about 7% of the main thread, profiled). Once the outbox
 * holds handOverEvents it goes at once: a big batch is worth the message, and
 * holding it back would leave the writer idle while this thread decodes the
 * next stream message (measured: 500-event streams lost a sixth of their rate
 * that way).
 */
export class Outbox {
  private message: ToWriter & { type: "append" } = { type: "append", ids: [], packed: [] };
  private events = 0;
  private scheduled = false;

  constructor(private readonly post: (message: ToWriter) => void) {}

  /** Adds batch `id`; it is posted with this turn's others, or at once with enough events. */
  add(id: number, records: readonly EventRecord[]): void {
    this.message.ids.push(id);
    this.message.packed.push(packBatch(records));
    this.events += records.length;
    if (this.events >= handOverEvents) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Posts whatever is waiting now. */
  flush(): void {
    if (this.message.ids.length === 0) return;
    this.post(this.message);
    this.message = { type: "append", ids: [], packed: [] };
    this.events = 0;
  }
}
