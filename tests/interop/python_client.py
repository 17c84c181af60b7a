#!/usr/bin/python3
"""Interop check: Python's gRPC implementation (grpcio, C core) against tally.

Given only proto/, this compiles the service definitions at run time with
grpc_tools.protoc, then drives all four AggregatorService RPCs and
grpc.health.v1.Health/Check over h2c against the server at argv[1]
(host:port). It prints one "ok ..." line per check and exits 0, or prints
"FAIL ..." and exits 1 on the first mismatch.

Debian packages: apt-get install -y python3-grpcio python3-grpc-tools python3-protobuf
Run with the Debian interpreter: /usr/bin/python3 tests/interop/python_client.py 127.0.0.1:PORT
"""

import os
import shutil
import sys
import tempfile
import uuid

import grpc
import grpc_tools
from grpc_tools import protoc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

PROTO_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto"))
PROTO_FILES = ["aggregator/v1/aggregator.proto", "grpc/health/v1/health.proto"]
DEADLINE = 60.0  # seconds, per call

STREAM_EVENTS = 1000
STREAM_BATCH = 100
STREAM_RESENDS = 200
PAGE_LIMIT = 300  # several pages, the last one partial
SUBSCRIBE_EVENTS = 3


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def ok(message):
    print("ok " + message, flush=True)


def wkt_include_dir():
    """Directory holding google/protobuf/*.proto (the well-known types)."""
    candidates = [
        os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"),
        "/usr/include",
        "/usr/local/include",
    ]
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, "google", "protobuf", "struct.proto")) and os.path.isfile(
            os.path.join(directory, "google", "protobuf", "timestamp.proto")
        ):
            return directory
    raise CheckFailed("cannot find google/protobuf/{struct,timestamp}.proto in " + ", ".join(candidates))


def compile_protos(out_dir):
    args = [
        "grpc_tools.protoc",
        "-I" + PROTO_ROOT,
        "-I" + wkt_include_dir(),
        "--python_out=" + out_dir,
        "--grpc_python_out=" + out_dir,
    ] + PROTO_FILES
    rc = protoc.main(args)
    check(rc == 0, "grpc_tools.protoc failed with exit code %d on %s" % (rc, " ".join(PROTO_FILES)))


def import_generated(out_dir):
    sys.path.insert(0, out_dir)
    # health.proto's package is grpc.health.v1, so its modules are generated as
    # <out>/grpc/health/v1/*.py, and "grpc" is already the grpcio package.
    # Let that package also look in <out>/grpc for its subpackages (grpcio has
    # no grpc.health of its own; grpc_health is a separate distribution).
    grpc.__path__.append(os.path.join(out_dir, "grpc"))
    from aggregator.v1 import aggregator_pb2, aggregator_pb2_grpc
    from grpc.health.v1 import health_pb2, health_pb2_grpc

    return aggregator_pb2, aggregator_pb2_grpc, health_pb2, health_pb2_grpc


def make_event(pb, topic, event_id, n):
    ts = Timestamp()
    ts.FromSeconds(1_700_000_000 + n)
    ts.nanos = 123_000_000  # millisecond precision survives any storage
    payload = Struct()
    payload.update({"n": n, "client": "python-grpcio", "nested": {"ok": True, "tags": ["a", "b"]}})
    return pb.Event(topic=topic, event_id=event_id, timestamp=ts, source="interop-python", payload=payload)


def run(address):
    out_dir = tempfile.mkdtemp(prefix="tally-interop-py-")
    try:
        compile_protos(out_dir)
        pb, pb_grpc, health_pb, health_grpc = import_generated(out_dir)
        ok("compiled %s with grpc_tools.protoc (grpcio %s)" % (", ".join(PROTO_FILES), grpc.__version__))
        with grpc.insecure_channel(address) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=DEADLINE)
            except grpc.FutureTimeoutError:
                raise CheckFailed("could not connect to %s within %ss" % (address, DEADLINE))
            checks(pb, pb_grpc.AggregatorServiceStub(channel), health_pb, health_grpc.HealthStub(channel))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def checks(pb, stub, health_pb, health):
    Status = pb.PublishResult
    run_id = uuid.uuid4().hex
    publish_topic = "interop-py-%s-publish" % run_id
    stream_topic = "interop-py-%s-stream" % run_id

    # --- Publish: 3 new events, then one re-sent. ---
    first = [make_event(pb, publish_topic, "p-%d" % i, i) for i in range(3)]
    resp = stub.Publish(pb.PublishRequest(events=first), timeout=DEADLINE)
    check(len(resp.results) == 3, "Publish: expected 3 results, got %d" % len(resp.results))
    statuses = [Status.Status.Name(r.status) for r in resp.results]
    check(statuses == ["STATUS_ACCEPTED"] * 3, "Publish: expected 3x STATUS_ACCEPTED, got %s" % statuses)
    check(
        (resp.accepted, resp.duplicates, resp.conflicts) == (3, 0, 0),
        "Publish: expected accepted=3 duplicates=0 conflicts=0, got %d/%d/%d" % (resp.accepted, resp.duplicates, resp.conflicts),
    )
    seqs = [r.seq for r in resp.results]
    check(all(s > 0 for s in seqs) and len(set(seqs)) == 3, "Publish: expected 3 distinct non-zero seqs, got %s" % seqs)
    ok("Publish: 3 events ACCEPTED (seq %s)" % seqs)

    resp = stub.Publish(pb.PublishRequest(events=[first[1]]), timeout=DEADLINE)
    check(len(resp.results) == 1, "Publish re-send: expected 1 result, got %d" % len(resp.results))
    status = Status.Status.Name(resp.results[0].status)
    check(status == "STATUS_DUPLICATE", "Publish re-send: expected STATUS_DUPLICATE, got %s" % status)
    check(
        (resp.accepted, resp.duplicates, resp.conflicts) == (0, 1, 0),
        "Publish re-send: expected accepted=0 duplicates=1 conflicts=0, got %d/%d/%d"
        % (resp.accepted, resp.duplicates, resp.conflicts),
    )
    check(
        resp.results[0].seq == seqs[1],
        "Publish re-send: DUPLICATE should name the stored seq %d, got %d" % (seqs[1], resp.results[0].seq),
    )
    ok("Publish: re-send DUPLICATE (seq %d)" % resp.results[0].seq)

    # --- PublishStream: 1,000 new events in batches of 100, then 200 re-sends. ---
    stream_events = [make_event(pb, stream_topic, "s-%04d" % i, i) for i in range(STREAM_EVENTS)]
    resends = stream_events[::5][:STREAM_RESENDS]  # every fifth event, 200 in all
    check(len(resends) == STREAM_RESENDS, "internal: expected %d re-sends" % STREAM_RESENDS)
    batches = [stream_events[i : i + STREAM_BATCH] for i in range(0, len(stream_events), STREAM_BATCH)]
    batches += [resends[i : i + STREAM_BATCH] for i in range(0, len(resends), STREAM_BATCH)]

    def requests():
        for batch in batches:
            yield pb.PublishStreamRequest(events=batch)

    resp = stub.PublishStream(requests(), timeout=DEADLINE)
    got = (resp.received, resp.accepted, resp.duplicates, resp.conflicts, resp.batches)
    want = (STREAM_EVENTS + STREAM_RESENDS, STREAM_EVENTS, STREAM_RESENDS, 0, len(batches))
    check(
        got == want,
        "PublishStream: expected received/accepted/duplicates/conflicts/batches = %s, got %s" % (want, got),
    )
    ok(
        "PublishStream: received %d, accepted %d, duplicates %d in %d batches"
        % (resp.received, resp.accepted, resp.duplicates, resp.batches)
    )

    # --- Events: page through the stream topic with after_seq / next_cursor. ---
    seen = []
    after = 0
    pages = 0
    while True:
        page = stub.Events(pb.EventsRequest(topic=stream_topic, after_seq=after, limit=PAGE_LIMIT), timeout=DEADLINE)
        pages += 1
        check(pages <= STREAM_EVENTS, "Events: paging did not end")
        for e in page.events:
            check(e.topic == stream_topic, "Events: got topic %r from a query for %r" % (e.topic, stream_topic))
            previous = seen[-1].seq if seen else after
            check(e.seq > previous, "Events: seq %d does not follow %d (not strictly increasing)" % (e.seq, previous))
            seen.append(e)
        if page.events:
            check(
                page.next_cursor == page.events[-1].seq,
                "Events: next_cursor %d should be the last seq of the page %d" % (page.next_cursor, page.events[-1].seq),
            )
        else:
            check(page.next_cursor == after, "Events: empty page should echo after_seq %d, got %d" % (after, page.next_cursor))
        if not page.has_more:
            break
        check(page.events, "Events: has_more is true on an empty page")
        after = page.next_cursor

    ids = [e.event_id for e in seen]
    check(len(ids) == STREAM_EVENTS, "Events: expected %d events, got %d" % (STREAM_EVENTS, len(ids)))
    check(len(set(ids)) == len(ids), "Events: an event_id appeared twice")
    want_ids = [e.event_id for e in stream_events]
    check(set(ids) == set(want_ids), "Events: stored event_ids differ from the ones streamed")
    check(ids == want_ids, "Events: commit order differs from the order the stream sent them in")
    # Spot-check that the content round-trips through the store.
    by_id = {e.event_id: e for e in stream_events}
    for e in (seen[0], seen[len(seen) // 2], seen[-1]):
        sent = by_id[e.event_id]
        check(e.source == sent.source, "Events: source of %s: sent %r, got %r" % (e.event_id, sent.source, e.source))
        check(
            e.timestamp == sent.timestamp,
            "Events: timestamp of %s: sent %s, got %s"
            % (e.event_id, sent.timestamp.ToJsonString(), e.timestamp.ToJsonString()),
        )
        check(
            json_format.MessageToDict(e.payload) == json_format.MessageToDict(sent.payload),
            "Events: payload of %s: sent %s, got %s"
            % (e.event_id, json_format.MessageToDict(sent.payload), json_format.MessageToDict(e.payload)),
        )
        check(e.HasField("received_at") and e.received_at.seconds > 0, "Events: %s has no received_at" % e.event_id)
    ok("Events: %d events in %d pages, seq strictly increasing (%d..%d)" % (len(seen), pages, seen[0].seq, seen[-1].seq))

    # --- Stats ---
    stats = stub.Stats(pb.StatsRequest(), timeout=DEADLINE)
    check(
        stats.received == stats.unique_processed + stats.duplicate_dropped + stats.conflicts,
        "Stats: received %d != unique_processed %d + duplicate_dropped %d + conflicts %d"
        % (stats.received, stats.unique_processed, stats.duplicate_dropped, stats.conflicts),
    )
    check(stats.received >= 3 + 1 + STREAM_EVENTS + STREAM_RESENDS, "Stats: received %d is less than this run sent" % stats.received)
    topics = {t.name: t.count for t in stats.topics}
    check(topics.get(publish_topic) == 3, "Stats: topic %s should count 3, got %s" % (publish_topic, topics.get(publish_topic)))
    check(
        topics.get(stream_topic) == STREAM_EVENTS,
        "Stats: topic %s should count %d, got %s" % (stream_topic, STREAM_EVENTS, topics.get(stream_topic)),
    )
    ok(
        "Stats: received %d == unique_processed %d + duplicate_dropped %d + conflicts %d"
        % (stats.received, stats.unique_processed, stats.duplicate_dropped, stats.conflicts)
    )

    subscribe_checks(pb, stub, run_id)

    # --- Health ---
    for service in ("", "aggregator.v1.AggregatorService"):
        resp = health.Check(health_pb.HealthCheckRequest(service=service), timeout=DEADLINE)
        name = health_pb.HealthCheckResponse.ServingStatus.Name(resp.status)
        check(name == "SERVING", "Health/Check(%r): expected SERVING, got %s" % (service, name))
    ok("Health/Check: SERVING")


def same_event(got, sent, where):
    """The stored event as delivered carries what was sent, plus its seq and received_at."""
    check(got.topic == sent.topic, "%s: topic: sent %r, got %r" % (where, sent.topic, got.topic))
    check(got.event_id == sent.event_id, "%s: event_id: sent %r, got %r" % (where, sent.event_id, got.event_id))
    check(got.source == sent.source, "%s: source of %s: sent %r, got %r" % (where, sent.event_id, sent.source, got.source))
    check(
        got.timestamp == sent.timestamp,
        "%s: timestamp of %s: sent %s, got %s" % (where, sent.event_id, sent.timestamp.ToJsonString(), got.timestamp.ToJsonString()),
    )
    check(
        json_format.MessageToDict(got.payload) == json_format.MessageToDict(sent.payload),
        "%s: payload of %s: sent %s, got %s"
        % (where, sent.event_id, json_format.MessageToDict(sent.payload), json_format.MessageToDict(got.payload)),
    )
    check(got.HasField("received_at") and got.received_at.seconds > 0, "%s: %s has no received_at" % (where, sent.event_id))


def subscribe_checks(pb, stub, run_id):
    topic = "interop-py-%s-subscribe" % run_id
    sent = [make_event(pb, topic, "sub-%d" % i, i) for i in range(SUBSCRIBE_EVENTS)]
    resp = stub.Publish(pb.PublishRequest(events=sent), timeout=DEADLINE)
    seqs = [r.seq for r in resp.results]
    check(resp.accepted == SUBSCRIBE_EVENTS, "Subscribe: publishing %d events accepted %d" % (SUBSCRIBE_EVENTS, resp.accepted))

    # --- Subscribe: the stored events in order, a caught-up heartbeat, then one published live. ---
    live_event = make_event(pb, topic, "sub-live", SUBSCRIBE_EVENTS)
    replayed = []
    heartbeat = None
    live = None
    live_seq = None
    call = stub.Subscribe(pb.SubscribeRequest(topic=topic, heartbeat_ms=1000), timeout=DEADLINE)
    try:
        for item in call:
            kind = item.WhichOneof("item")
            if kind == "event":
                if heartbeat is None:
                    replayed.append(item.event)
                else:
                    live = item.event
                    break
            elif kind == "heartbeat" and item.heartbeat.caught_up and heartbeat is None:
                heartbeat = item.heartbeat
                live_resp = stub.Publish(pb.PublishRequest(events=[live_event]), timeout=DEADLINE)
                live_seq = live_resp.results[0].seq
    finally:
        call.cancel()
    check(
        [e.seq for e in replayed] == seqs,
        "Subscribe: expected the stored events %s before the caught-up heartbeat, got %s" % (seqs, [e.seq for e in replayed]),
    )
    for got, want in zip(replayed, sent):
        same_event(got, want, "Subscribe")
    check(heartbeat is not None, "Subscribe: no caught-up heartbeat")
    check(
        heartbeat.cursor >= seqs[-1] and heartbeat.head_seq >= heartbeat.cursor,
        "Subscribe: heartbeat cursor %d should be at or past the last event %d and at most head_seq %d"
        % (heartbeat.cursor, seqs[-1], heartbeat.head_seq),
    )
    ok("Subscribe: %d stored events in seq order, then a heartbeat with caught_up (cursor %d)" % (len(replayed), heartbeat.cursor))
    check(live is not None, "Subscribe: the event published after the heartbeat did not arrive")
    check(live.seq == live_seq, "Subscribe: live event seq %d, Publish answered %d" % (live.seq, live_seq))
    same_event(live, live_event, "Subscribe (live)")
    ok("Subscribe: live event %s (seq %d) delivered after catching up" % (live.event_id, live.seq))
    all_seqs = seqs + [live_seq]

    # --- A durable consumer: receive, Ack part, Consumers shows it, resume after it, delete. ---
    consumer = "interop-py-%s" % run_id
    got = []
    call = stub.Subscribe(pb.SubscribeRequest(topic=topic, consumer=consumer), timeout=DEADLINE)
    try:
        for item in call:
            if item.WhichOneof("item") == "event":
                got.append(item.event.seq)
                if len(got) == len(all_seqs):
                    break
    finally:
        call.cancel()
    check(got == all_seqs, "Subscribe consumer=%s: expected %s, got %s" % (consumer, all_seqs, got))
    acked = all_seqs[1]
    ack = stub.Ack(pb.AckRequest(consumer=consumer, seq=acked), timeout=DEADLINE)
    check(ack.acked_seq == acked, "Ack: expected acked_seq %d, got %d" % (acked, ack.acked_seq))
    ok("Ack: consumer %s acked_seq %d" % (consumer, ack.acked_seq))

    listed = None
    after = ""
    while listed is None:
        page = stub.Consumers(pb.ConsumersRequest(after=after), timeout=DEADLINE)
        listed = next((c for c in page.consumers if c.name == consumer), None)
        if not page.has_more:
            break
        after = page.next_after
    check(listed is not None, "Consumers: %s is not listed" % consumer)
    check(listed.acked_seq == acked, "Consumers: %s acked_seq: expected %d, got %d" % (consumer, acked, listed.acked_seq))
    check(listed.topic == topic, "Consumers: %s topic: expected %r, got %r" % (consumer, topic, listed.topic))
    want_lag = len(all_seqs) - 2
    check(listed.lag == want_lag and not listed.lag_capped, "Consumers: %s lag: expected %d, got %d (capped %s)" % (consumer, want_lag, listed.lag, listed.lag_capped))
    check(listed.HasField("acked_at"), "Consumers: %s has no acked_at after an Ack" % consumer)
    ok("Consumers: %s acked_seq %d, lag %d" % (consumer, listed.acked_seq, listed.lag))

    call = stub.Subscribe(pb.SubscribeRequest(topic=topic, consumer=consumer), timeout=DEADLINE)
    resumed = None
    try:
        for item in call:
            if item.WhichOneof("item") == "event":
                resumed = item.event.seq
                break
    finally:
        call.cancel()
    check(resumed == all_seqs[2], "Subscribe consumer=%s again: expected to resume at seq %d, got %s" % (consumer, all_seqs[2], resumed))
    ok("Subscribe: consumer %s resumed after its acked seq, at %d" % (consumer, resumed))

    deleted = stub.DeleteConsumer(pb.DeleteConsumerRequest(name=consumer), timeout=DEADLINE)
    check(deleted.acked_seq == acked, "DeleteConsumer: expected acked_seq %d, got %d" % (acked, deleted.acked_seq))
    try:
        stub.DeleteConsumer(pb.DeleteConsumerRequest(name=consumer), timeout=DEADLINE)
        raise CheckFailed("DeleteConsumer: deleting %s twice should be NOT_FOUND" % consumer)
    except grpc.RpcError as err:
        check(err.code() == grpc.StatusCode.NOT_FOUND, "DeleteConsumer twice: expected NOT_FOUND, got %s" % err.code())
    ok("DeleteConsumer: %s deleted (acked_seq %d), again NOT_FOUND" % (consumer, deleted.acked_seq))


def main(argv):
    if len(argv) != 2:
        print("usage: %s HOST:PORT" % argv[0], file=sys.stderr)
        return 2
    try:
        run(argv[1])
    except CheckFailed as failure:
        print("FAIL " + str(failure), flush=True)
        return 1
    except grpc.RpcError as err:
        print("FAIL RPC error %s: %s" % (err.code(), err.details()), flush=True)
        return 1
    print("PASS python grpcio interop against %s" % argv[1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
