import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { countSeq, emptyReport, TargetWatch, type Follower } from "./follower.js";

/**
 * JetStream's side of the bench's subscribers: an ordered consumer (ack
 * none, recreated at the right seq if a message goes missing), as NATS
 * recommends for reading a stream in order, counting every message's stream
 * seq as tally's subscribers count event seqs.
 */

/**
 * Messages a pull asks for at once. The client's default, 100, leaves the
 * consumer waiting on its own pull requests at these rates; 1,000 is a few
 * hundred KiB of bench events in flight, like tally's subscribers' HTTP/2
 * windows.
 */
const pullMessages = 1_000;

/** Follows every subject of `stream` on a connection of its own: new messages only, or everything from the start. */
export function followJetStream(url: string, stream: string, start: "new" | "beginning"): Follower {
  const report = emptyReport("");
  const watch = new TargetWatch(report);
  const reachedNow = () => watch.holds(report.lastSeq);
  let closing = false;
  let close: () => Promise<void> = async () => {
    closing = true;
  };
  const ready = (async () => {
    const nc = await connect({ servers: url, name: "tally-bench-subscriber" });
    close = async () => {
      closing = true;
      await nc.close();
    };
    // consumers.get() creates the consumer on the server before it answers: from then on every new message is delivered.
    const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: start === "new" ? DeliverPolicy.New : DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: pullMessages });
    close = async () => {
      closing = true;
      await messages.close().catch(() => undefined);
      await nc.close();
    };
    void (async () => {
      for await (const m of messages) {
        countSeq(report, m.seq, Date.now());
        watch.check(reachedNow);
      }
      if (!closing) watch.fail("the ordered consumer stopped");
    })().catch((err: unknown) => watch.fail(`the ordered consumer failed: ${err instanceof Error ? err.message : String(err)}`));
  })();
  ready.catch((err: unknown) => watch.fail(`could not start the ordered consumer: ${err instanceof Error ? err.message : String(err)}`));
  return {
    report,
    ready,
    reach: (target) => watch.wait(target, reachedNow),
    close: () => close(),
  };
}
