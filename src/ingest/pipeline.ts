import type { Caller } from "../auth/caller.js";
import type { DecodedBatch } from "../codec/decoded-batch.js";
import { validateBatch, type ValidationLimits } from "../codec/validate.js";
import { ValidationError } from "../codec/violations.js";
import { summarize, type BatchOutcome } from "./outcome.js";
import { PublishStream } from "./publish-stream.js";
import type { IngestQueue } from "./queue.js";

/**
 * The one publish path behind every front door (REST, Connect JSON and
 * binary, gRPC-Web, the lean unary gRPC path, PublishStream). A front door
 * decodes its request into a DecodedBatch and hands it here with the caller
 * the gate admitted; from then on every request is treated alike:
 * authorize on the decoded topics, validate, queue, wait for the commit,
 * summarize.
 */
export class PublishPipeline {
  /** Events refused as invalid since start, for Stats. */
  rejectedInvalid = 0;

  constructor(
    private readonly queue: IngestQueue,
    private readonly limits: ValidationLimits,
  ) {}

  /** Events allowed in one batch, for decoders that refuse an oversized batch before decoding it. */
  get maxBatch(): number {
    return this.limits.maxBatch;
  }

  /** Publishes one request, refusing at once (OverloadedError) when the queue is full; resolves after the commit. */
  async publish(batch: DecodedBatch, caller: Caller): Promise<BatchOutcome> {
    caller.authorizePublish(batch.events);
    const { records, bytes } = this.validate(batch);
    return summarize(await this.queue.submit(records, bytes));
  }

  /** Starts a PublishStream: its messages are fed one by one, each through the same steps as a request. */
  openStream(caller: Caller, signal: AbortSignal): PublishStream {
    return new PublishStream({
      admit: (batch, message) => {
        caller.authorizePublish(batch.events, `stream message ${message}`, `messages[${message}].`);
        try {
          return this.validate(batch);
        } catch (err) {
          // Named by message too (messages[i].events[j]), as authorization and the JSON text check name them: events[j] alone does not say which of the stream's batches.
          if (err instanceof ValidationError) throw new ValidationError(err.violations.map((v) => ({ ...v, message: v.message ?? message })));
          throw err;
        }
      },
      enqueue: async (records, bytes) => {
        const { committed } = await this.queue.submitWhenRoom(records, bytes, signal);
        return { committed: committed.then(summarize) };
      },
    });
  }

  private validate(batch: DecodedBatch) {
    try {
      return validateBatch(batch, this.limits);
    } catch (err) {
      if (err instanceof ValidationError) this.rejectedInvalid += Math.max(batch.events.length, 1);
      throw err;
    }
  }
}
