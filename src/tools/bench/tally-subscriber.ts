import http2 from "node:http2";
import net from "node:net";
import { grpcStatusNames } from "../load/grpc-frames.js";
import { countSeq, emptyReport, TargetWatch, type Follower, type LatencySink } from "./follower.js";
import { decodeSubscribeResponse, emptyItem, subscribeRequestFrame, type SubscribeOptions } from "./subscribe-frames.js";

/**
 * A subscriber of tally's Subscribe over raw HTTP/2 (node:http2), as the
 * load generator publishes: a client that spends its CPU in a gRPC library
 * would make the subscriber the bottleneck of what it measures.
 */

const subscribePath = "/aggregator.v1.AggregatorService/Subscribe";

/**
 * Receive windows of the subscribers' connections. HTTP/2's default of
 * 64 KiB per stream and per connection makes a fast server wait for window
 * updates, ten streams sharing one connection's; grpc-go grows its windows
 * to 16 MiB for the same reason (BDP estimation).
 */
const streamWindowBytes = 4 * 1024 * 1024;
const connectionWindowBytes = 16 * 1024 * 1024;

/** An h2c connection for subscribers: Nagle off, wide receive windows; resolves once connected. */
export function connectSubscriberSession(baseUrl: string): Promise<http2.ClientHttp2Session> {
  const url = new URL(baseUrl);
  const session = http2.connect(url.origin, {
    createConnection: () => net.connect({ host: url.hostname, port: Number(url.port || 80), noDelay: true }),
    settings: { initialWindowSize: streamWindowBytes },
  });
  return new Promise((resolve, reject) => {
    session.once("connect", () => {
      session.setLocalWindowSize(connectionWindowBytes);
      // From here on errors surface on the subscriptions' streams.
      session.off("error", reject);
      session.on("error", () => undefined);
      resolve(session);
    });
    session.once("error", reject);
  });
}

/**
 * Opens one Subscribe on `session` and counts what it delivers: every
 * event's seq (order, gaps, duplicates), its topic against the one asked
 * for, and the delay from its commit (received_at, milliseconds) to its
 * arrival here (Date.now(), same machine) into `sink`.
 */
export function followTally(session: http2.ClientHttp2Session, options: SubscribeOptions, sink: LatencySink): Follower {
  const report = emptyReport(options.topic ?? "");
  const watch = new TargetWatch(report);
  const expectedTopic = options.topic ? Buffer.from(options.topic) : undefined;
  const item = emptyItem();
  let caughtUpCursor = 0;
  let closing = false;
  let becomeReady: () => void = () => undefined;
  let failReady: (err: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    becomeReady = resolve;
    failReady = reject;
  });
  // Not every caller waits for ready (a catch-up waits for its target): a failure is reported through the report either way.
  ready.catch(() => undefined);
  // A filtered subscriber may never see an event at the target seq: a caught-up heartbeat's cursor says it has everything up to there.
  const reachedNow = () => watch.holds(report.lastSeq) || watch.holds(caughtUpCursor);

  const stream = session.request({ ":method": "POST", ":path": subscribePath, "content-type": "application/grpc+proto", te: "trailers" });
  let pending: Buffer | undefined;
  stream.on("data", (chunk: Buffer) => {
    // One clock reading per chunk: every event in it arrived at the same moment.
    const now = Date.now();
    const recorder = sink.recorder;
    const b = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (b.length - at >= 5) {
      const length = b.readUInt32BE(at + 1);
      if (b.length - at - 5 < length) break;
      decodeSubscribeResponse(b, at + 5, at + 5 + length, item);
      at += 5 + length;
      if (item.kind === "event") {
        countSeq(report, item.seq, now);
        if (expectedTopic !== undefined && expectedTopic.compare(b, item.topicStart, item.topicEnd) !== 0) report.wrongTopic++;
        if (recorder !== undefined && item.receivedAtMs > 0) recorder.record(Math.max(0, now - item.receivedAtMs) * 1000);
      } else if (item.kind === "heartbeat") {
        report.heartbeats++;
        if (item.caughtUp && item.cursor > caughtUpCursor) caughtUpCursor = item.cursor;
        becomeReady();
      }
    }
    pending = at < b.length ? b.subarray(at) : undefined;
    watch.check(reachedNow);
  });
  const status = (headers: http2.IncomingHttpHeaders) => {
    const code = headers["grpc-status"];
    if (code === undefined || closing) return;
    const name = grpcStatusNames[Number(code)] ?? `Code${String(code)}`;
    const reason = `Subscribe ended by the server: ${name} ${decodeURIComponent(String(headers["grpc-message"] ?? ""))}`.trim();
    watch.fail(reason);
    failReady(new Error(reason));
  };
  stream.on("response", status);
  stream.on("trailers", status);
  stream.on("error", (err: Error) => {
    if (closing) return;
    watch.fail(`Subscribe stream failed: ${err.message}`);
    failReady(err);
  });
  stream.on("close", () => {
    if (closing) return;
    watch.fail(`Subscribe stream closed (HTTP/2 code ${stream.rstCode})`);
    failReady(new Error(report.endedEarly));
  });
  stream.end(subscribeRequestFrame(options));

  return {
    report,
    ready,
    reach: (target) => watch.wait(target, reachedNow),
    close: async () => {
      closing = true;
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    },
  };
}
