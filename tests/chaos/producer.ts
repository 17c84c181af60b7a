import type { Ledger, RequestRecord, Tracked } from "./ledger.js";
import type { Prng } from "./prng.js";
import type { ProducerKind, Sender } from "./transports.js";
import { chaosEvent } from "./workload.js";

/** The four chaos producers: two stream, two publish unary (one gRPC, one REST), all at once. */
export const producerKinds: readonly ProducerKind[] = ["grpc-stream", "grpc-stream", "grpc-unary", "rest-unary"];

/** Share of the events in a request that re-send an earlier event (of any producer) instead of a new one. */
const resendShare = 0.2;

/** Batches in one PublishStream, at most. */
const maxStreamBatches = 6;

/** Events in one batch, at most: enough to keep the writer busy, small enough for many requests per second. */
const maxBatchEvents = 100;

/** Events per batch when re-sending everything at the end. */
const resendBatchEvents = 500;

/** Batches per stream when re-sending everything at the end. */
const resendStreamBatches = 20;

/** One producer: what it sent, and what it sends next. Its choices come from its own PRNG. */
export class Producer {
  /** Every event it ever sent, once each, in the order of first sending. */
  readonly sent: Tracked[] = [];
  private readonly sentKeys = new Set<string>();
  private nextEventNumber = 0;

  constructor(
    readonly id: number,
    readonly kind: ProducerKind,
    private readonly prng: Prng,
    private readonly ledger: Ledger,
  ) {}

  /**
   * The batches of its next request: new events with about 20% re-sends of
   * events whose first request has settled, sometimes twice in one batch.
   */
  nextBatches(): { batches: Tracked[][]; fresh: Set<Tracked> } {
    const fresh = new Set<Tracked>();
    const batchCount = this.kind === "grpc-stream" ? this.prng.int(1, maxStreamBatches) : 1;
    const batches: Tracked[][] = [];
    for (let b = 0; b < batchCount; b++) {
      const size = this.prng.chance(0.1) ? 1 : this.prng.int(1, maxBatchEvents);
      const batch: Tracked[] = [];
      for (let i = 0; i < size; i++) {
        const pool = this.ledger.pool;
        let tracked: Tracked;
        if (pool.length > 0 && this.prng.chance(resendShare)) {
          tracked = pool[this.prng.int(0, pool.length - 1)]!;
        } else {
          tracked = this.ledger.track(chaosEvent(this.id, this.nextEventNumber++, this.prng));
          fresh.add(tracked);
        }
        batch.push(tracked);
        if (!this.sentKeys.has(tracked.key)) {
          this.sentKeys.add(tracked.key);
          this.sent.push(tracked);
        }
      }
      batches.push(batch);
    }
    return { batches, fresh };
  }

  /** Everything it ever sent, cut into requests of its own kind. */
  resendRequests(): Tracked[][][] {
    const batches: Tracked[][] = [];
    for (let i = 0; i < this.sent.length; i += resendBatchEvents) batches.push(this.sent.slice(i, i + resendBatchEvents));
    const perRequest = this.kind === "grpc-stream" ? resendStreamBatches : 1;
    const requests: Tracked[][][] = [];
    for (let i = 0; i < batches.length; i += perRequest) requests.push(batches.slice(i, i + perRequest));
    return requests;
  }
}

/** Sends a request the ledger has begun; `sent` is called as each batch is handed to the transport. */
export function sendTracked(sender: Sender, request: RequestRecord, sent: () => void) {
  return sender.send(
    request.batches.map((batch) => batch.map((t) => t.event)),
    sent,
  );
}
