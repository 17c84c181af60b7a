// k6 load test: client-streaming PublishStream against a running tally
// (k6 v0.49 or newer, where streams are in k6/net/grpc).
//
//   k6 run tests/load/publish-stream.js
//   k6 run -e TARGET=127.0.0.1:9000 -e BATCH=500 -e MESSAGES=20 -e VUS=4 -e DURATION=1m tests/load/publish-stream.js
//
// Each iteration opens one stream, writes MESSAGES batches of BATCH events
// (DUP_RATE of them re-sends of the VU's earlier events), ends it, and
// checks the totals tally answers after the last batch has committed: every
// event received, accepted + duplicates = received, no conflicts. The
// thresholds fail the run (exit code 99) on a stream error, a wrong total,
// or a stream slower than STREAM_P99_MS at p99.
import { Client, Stream } from 'k6/net/grpc';
import { check } from 'k6';
import { eventSource, newRunId } from './k6-events.js';
import { Counter, Trend } from 'k6/metrics';

const TARGET = __ENV.TARGET || '127.0.0.1:8080';
const BATCH = Number(__ENV.BATCH || 500);
const MESSAGES = Number(__ENV.MESSAGES || 20);
const DUP_RATE = Number(__ENV.DUP_RATE || 0.2);
const STREAM_P99_MS = Number(__ENV.STREAM_P99_MS || 10000);

export const options = {
  vus: Number(__ENV.VUS || 4),
  duration: __ENV.DURATION || '30s',
  thresholds: {
    stream_duration: [`p(99)<${STREAM_P99_MS}`],
    stream_errors: ['count==0'],
    checks: ['rate==1'],
    events_conflict: ['count==0'],
  },
};

const client = new Client();
// Paths are relative to this script: the schema comes from proto/, the same files the server is built from.
client.load(['../../proto'], 'aggregator/v1/aggregator.proto');

// The server answers once per stream, after its last batch has committed: that is the latency a producer sees.
const streamDuration = new Trend('stream_duration', true);
const streamErrors = new Counter('stream_errors');
const eventsSent = new Counter('events_sent');
const eventsAccepted = new Counter('events_accepted');
const eventsDuplicate = new Counter('events_duplicate');
const eventsConflict = new Counter('events_conflict');

// setup() runs once; its answer reaches every VU, so ids are fresh for each run.
export function setup() {
  return { run: newRunId() };
}

// Re-sends come from the VU's last 5000 events.
const nextEvent = eventSource('k6s', DUP_RATE, 5000);

export default function (data) {
  if (__ITER === 0) {
    client.connect(TARGET, { plaintext: true });
  }
  const started = Date.now();
  const expected = BATCH * MESSAGES;
  let totals = null;
  const stream = new Stream(client, 'aggregator.v1.AggregatorService/PublishStream');

  stream.on('data', (message) => {
    totals = message;
  });

  stream.on('error', (err) => {
    streamErrors.add(1);
    console.error(`stream failed: code ${err.code}: ${err.message}`);
  });

  // The iteration lasts until the stream ends: k6 keeps the VU's event loop running for it.
  stream.on('end', () => {
    streamDuration.add(Date.now() - started);
    const ok = check(totals, {
      'stream answered with totals': (t) => t !== null,
      'every event received': (t) => t !== null && Number(t.received) === expected,
      'accepted + duplicates = received': (t) => t !== null && Number(t.accepted) + Number(t.duplicates) === Number(t.received),
    });
    if (ok) {
      eventsAccepted.add(Number(totals.accepted));
      eventsDuplicate.add(Number(totals.duplicates));
      eventsConflict.add(Number(totals.conflicts || 0));
    }
  });

  for (let m = 0; m < MESSAGES; m++) {
    const events = [];
    for (let i = 0; i < BATCH; i++) events.push(nextEvent(data.run));
    stream.write({ events });
    eventsSent.add(events.length);
  }
  stream.end();
}
