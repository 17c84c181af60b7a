// k6 load test: unary gRPC Publish against a running tally (k6 v0.49 or newer).
//
//   k6 run tests/load/publish.js
//   k6 run -e TARGET=127.0.0.1:9000 -e BATCH=100 -e VUS=8 -e DURATION=1m tests/load/publish.js
//
// Each VU publishes batches of BATCH events; DUP_RATE of the events are
// re-sends of the VU's earlier events, which tally must answer DUPLICATE
// and never store twice. The thresholds fail the run (exit code 99) when
// the p99 latency is over P99_MS, any call fails, or any event comes back
// CONFLICT (the load never changes a payload, so a conflict is a bug).
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { eventSource, newRunId } from './k6-events.js';
import { Counter } from 'k6/metrics';

const TARGET = __ENV.TARGET || '127.0.0.1:8080';
const BATCH = Number(__ENV.BATCH || 1);
const DUP_RATE = Number(__ENV.DUP_RATE || 0.2);
const P99_MS = Number(__ENV.P99_MS || 250);

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '30s',
  thresholds: {
    grpc_req_duration: [`p(99)<${P99_MS}`],
    checks: ['rate==1'],
    publish_errors: ['count==0'],
    events_conflict: ['count==0'],
  },
};

const client = new grpc.Client();
// Paths are relative to this script: the schema comes from proto/, the same files the server is built from.
client.load(['../../proto'], 'aggregator/v1/aggregator.proto');

const eventsSent = new Counter('events_sent');
const eventsAccepted = new Counter('events_accepted');
const eventsDuplicate = new Counter('events_duplicate');
const eventsConflict = new Counter('events_conflict');
const publishErrors = new Counter('publish_errors');

// setup() runs once; its answer reaches every VU, so ids are fresh for each run.
export function setup() {
  return { run: newRunId() };
}

// Re-sends come from the VU's last 1000 events.
const nextEvent = eventSource('k6', DUP_RATE, 1000);

export default function (data) {
  if (__ITER === 0) {
    client.connect(TARGET, { plaintext: true });
  }
  const events = [];
  for (let i = 0; i < BATCH; i++) events.push(nextEvent(data.run));

  const response = client.invoke('aggregator.v1.AggregatorService/Publish', { events });
  const ok = check(response, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'one result per event': (r) => r && r.message && r.message.results.length === events.length,
  });
  eventsSent.add(events.length);
  if (!ok || !response.message) {
    publishErrors.add(1);
    return;
  }
  eventsAccepted.add(Number(response.message.accepted || 0));
  eventsDuplicate.add(Number(response.message.duplicates || 0));
  eventsConflict.add(Number(response.message.conflicts || 0));
}
