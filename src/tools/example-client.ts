#!/usr/bin/env node
/**
 * The README's TypeScript client, kept here so it compiles and runs as printed:
 *   npm run build:tools && node dist/tools/src/tools/example-client.js [http://localhost:8080]
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { AggregatorService, PublishResult_Status } from "../../gen/aggregator/v1/aggregator_pb.js";

const transport = createGrpcTransport({ baseUrl: process.argv[2] ?? "http://localhost:8080" });
const client = createClient(AggregatorService, transport);

// Publish answers after the events have committed: one result per event.
const event = { topic: "orders", eventId: "order-42", timestamp: timestampNow(), source: "checkout", payload: { amount: 100, currency: "EUR" } };
const first = await client.publish({ events: [event] });
const again = await client.publish({ events: [event] }); // a retry is harmless
console.log(PublishResult_Status[first.results[0]!.status], PublishResult_Status[again.results[0]!.status]);

// PublishStream: many batches on one stream, totals at the end.
const totals = await client.publishStream(
  (async function* () {
    for (let batch = 0; batch < 3; batch++) {
      yield { events: Array.from({ length: 100 }, (_, i) => ({ ...event, eventId: `bulk-${batch}-${i}` })) };
    }
  })(),
);
console.log(`stream: received ${totals.received}, accepted ${totals.accepted}, duplicates ${totals.duplicates}`);

// Events pages by seq; Stats reads the committed counters.
const page = await client.events({ topic: "orders", limit: 2 });
console.log(page.events.map((e) => `${e.seq} ${e.eventId}`).join(", "), `next_cursor ${page.nextCursor}`);
const stats = await client.stats({});
console.log(`received ${stats.received} = ${stats.uniqueProcessed} stored + ${stats.duplicateDropped} duplicates + ${stats.conflicts} conflicts`);
