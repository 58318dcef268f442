#!/usr/bin/env python3
"""Runs the compatibility scenarios with real clients against weir, Apache Kafka, or both
in one go, and prints a side-by-side table (client x check x broker).

  run.py                                   all clients, both brokers, basic and group
  run.py --broker kafka --clients java,confluent-kafka,franz-go --scenarios txn
  run.py --broker weir --clients kcat,java --scenarios basic

Options:
  --broker weir|kafka|both     (default both)
  --clients a,b,...            (default all: kcat, confluent-kafka, java, franz-go, sarama,
                                kafka-python, aiokafka, kafkajs, rdkafka)
  --scenarios basic,group,...  (default all: basic,group,consumer,static,txn,produce-errors,streams,connect)
  --weir-bin PATH              (default target/release/weir)
  --records N                  records in the basic scenario (default 3000)
  --group-records N            records in the group scenario (default 20000)
  --txn-records N              records in each transaction check (default 2000)
  --consumer-records N         records in the consumer scenario's first batch (default 6000)
  --bootstrap HOST:PORT        run against an already running broker instead (WEIR_COMPAT_BOOTSTRAP);
                               the group scenario's broker restart is then left out

Scenarios:
  basic   create a 3-partition topic, produce keyed records, read them back, delete it
  group   three members of a consumer group: exactly once, 2/2/2, kill -9, leave, restart
  consumer the consumer group protocol (KIP-848; java, confluent-kafka and franz-go only):
          scale 1 -> 6 -> 2 members with every record read once, a kill -9, a regex
          subscription that picks up a new topic, the range assignor, and a broker restart
          the members ride through
  txn     transactions (java, confluent-kafka and franz-go only): commits, an abort, an open
          transaction and the last stable offset, fencing by transactional.id, and
          consume-transform-produce with the group's offsets sent to the transaction
  produce-errors
          per-record produce errors (KIP-467; java and confluent-kafka only): one batch with
          keyless records to a compacted topic, one with timestamps out of the topic's window,
          one over max.message.bytes; each record fails exactly as Apache Kafka fails it, and
          nothing of a refused batch is stored
  streams Kafka Streams (apps/streams, the broker's version) word count with a repartition
          topic and a changelog: at_least_once, exactly_once_v2, and exactly_once_v2 through
          two kill -9s of the application mid-way (run once per broker, whatever --clients)
  connect a distributed Kafka Connect worker (apps/connect) with the FileStream connectors:
          file -> topic -> file across a clean restart, then exactly.once.source.support
          through a kill -9 of the worker (run once per broker, whatever --clients)

Prints one PASS/FAIL line per check, the table, and ends with "N passed, N failed". Exits
non-zero when a check fails on Apache Kafka (the scenario is wrong) or fails on weir
without an entry in KNOWN_DIFFERENCES.md. Clients must be installed first (install.sh).
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from apps import scenarios as apps  # noqa: E402
from harness import CLIENTS, VERSIONS, Kafka, Member, Pair, Weir, wait_until  # noqa: E402

SESSION_TIMEOUT_S = 6

CHECKS = {
    "basic.created": "creates a 3-partition topic",
    "basic.acked": "every keyed record acknowledged",
    "basic.read-back": "every record read back exactly once",
    "basic.order": "per partition in produce order, each key in one partition",
    "basic.placement": "records are at the partition and offset the producer was told",
    "basic.deleted": "deletes the topic",
    "group.exactly-once": "3 members consume every record exactly once between them",
    "group.split": "6 partitions split 2/2/2",
    "group.crash": "after kill -9 of a member the others consume every new record",
    "group.crash-moved": "the killed member's partitions move after its session timeout",
    "group.leave": "a clean leave reassigns before the session timeout",
    "group.resume": "after a broker restart the group resumes from its committed offsets",
    "consumer.one": "consumer protocol: one member owns all 6 partitions and reads every record",
    "consumer.split": "consumer protocol: 6 members own one partition each",
    "consumer.exactly-once": "consumer protocol: from 1 to 6 members, every record read exactly once",
    "consumer.leave": "consumer protocol: 4 of 6 leave, the other 2 own 3 and 3 before the session timeout",
    "consumer.crash": "consumer protocol: kill -9 of one of 2, the other owns all 6 after the session timeout and reads every new record",
    "consumer.regex": "consumer protocol: a regex subscription reads a topic created after it joined",
    "consumer.range": "consumer protocol, range assignor: 3 members own 2 adjacent partitions each and read every record once",
    "consumer.restart": "consumer protocol: across a broker restart the 3 members keep their partitions and the group its epoch (nobody rejoins), and every new record is read once",
    "static.together": "2 static members of one process, subscribed at once to an empty group: one generation, one assignment callback each, 2 and 2 partitions",
    "static.together-dynamic": "the same with 2 dynamic members (member ids given first, KIP-394)",
    "static.restart": "each of 2 static members killed -9 and restarted within its session timeout (so the leader too) gets its partitions back; the other sees no callback",
    "static.restart-reads": "records produced while a static member was down are read by it after its restart, from its committed offset",
    "static.changed-subscription": "a static member restarted subscribed to one more topic: the group's protocol is unchanged, so no rebalance: it gets its old partitions back and the other sees no callback",
    "txn.commit": "records committed in 5 transactions read back exactly once with read_committed, where the producer was told",
    "txn.abort": "an aborted transaction is invisible to read_committed and visible to read_uncommitted; later commits to both",
    "txn.order": "per partition, both isolation levels read in produce order",
    "txn.open-blocks": "an open transaction holds read_committed back at it, read_uncommitted reads it; its commit releases it",
    "txn.lso": "while a transaction is open, read_committed end offsets are its first offsets, below the high watermarks",
    "txn.fencing": "a second producer with the same transactional.id fences the first: its commit fails, and it is told it is fenced",
    "txn.fenced-errors": "the fenced producer's late send, commit and abort fail with the errors Apache Kafka gives it",
    "txn.fenced-abort": "the fenced producer's open transaction is aborted: never read with read_committed",
    "txn.consume-transform-produce": "consume, transform, produce with the group's offsets in the transaction: every input once",
    "txn.sent-offsets": "the group's committed offsets are the input's end offsets",
    "produce-errors.keyless": "a batch with keyless records to a compacted topic: each keyless record fails as invalid, the others as part of an invalid batch, as on Apache Kafka",
    "produce-errors.timestamps": "a batch with timestamps outside message.timestamp.before/after.max.ms: those records fail as invalid, the others as part of an invalid batch, as on Apache Kafka",
    "produce-errors.too-large": "a batch over max.message.bytes fails every record with the size error Apache Kafka gives",
    "produce-errors.nothing-stored": "no record of a refused batch is stored: a valid batch after them gets offsets 0, 1, 2",
    "streams.alo": "word count under at_least_once: the last count of every word on the output topic is right",
    "streams.internal-topics": "Streams creates its repartition topic and its changelog, compacted",
    "streams.eos": "word count under exactly_once_v2: the last counts read with read_committed are right",
    "streams.eos-crash": "exactly_once_v2, killed -9 twice mid-way (restarted with its state, then without): every word counted once",
    "connect.file-to-file": "FileStreamSource -> topic -> FileStreamSink: the sink file has every line, in order",
    "connect.restart": "lines appended while the worker is stopped reach the sink file after its restart: none lost, none twice",
    "connect.eos": "with exactly.once.source.support, a source requiring exactly once writes lines read with read_committed",
    "connect.eos-crash": "the worker killed -9 mid-way through a large file: read_committed has every line exactly once, in order",
}

# The scenarios run when --scenarios is not given.
DEFAULT_SCENARIOS = ["basic", "group", "consumer", "static", "txn", "produce-errors", "streams", "connect"]
SCENARIOS = ["basic", "group", "consumer", "static", "txn", "produce-errors", "streams", "connect"]
# Scenarios that run a real application (apps/) once per broker instead of once per client;
# the table names the application where it names a client.
APP_SCENARIOS = {"streams": "kafka-streams", "connect": "kafka-connect"}

# The clients with transaction drivers, and the error each reports to a fenced producer
# (an exception class, a librdkafka error name, a Kafka error name), matched as a substring
# of what its late send, its commit and the abort after that commit returned. Apache Kafka
# answers the late send with INVALID_PRODUCER_EPOCH: the Java client takes that for an
# abortable error (KIP-588) and learns it is fenced only from the abort's EndTxn
# (PRODUCER_FENCED); librdkafka makes it fatal _FENCED at once.
TXN_CLIENTS = ["java", "confluent-kafka", "franz-go"]
# The clients whose members report their rebalance callbacks and run as pairs in one process.
STATIC_CLIENTS = ["java", "confluent-kafka"]
# The clients that speak the consumer group protocol (KIP-848).
CONSUMER_CLIENTS = ["java", "confluent-kafka", "franz-go"]
FENCED_ERRORS = {
    "java": ["ProducerFencedException"],
    "confluent-kafka": ["_FENCED", "PRODUCER_FENCED"],
    "franz-go": ["PRODUCER_FENCED"],
}
# What each fenced producer's late send, commit and abort return with Apache Kafka 4.4
# (INVALID_PRODUCER_EPOCH for the Produce, PRODUCER_FENCED for the EndTxn abort), exactly.
FENCED_AS_ON_KAFKA = {
    "java": {"send": ["InvalidProducerEpochException"], "commit": ["InvalidProducerEpochException"],
             "abort": ["ProducerFencedException"]},
    "confluent-kafka": {"send": ["_FENCED fatal"], "commit": ["_FENCED fatal"], "abort": ["_FENCED fatal"]},
    "franz-go": {"send": ["INVALID_PRODUCER_EPOCH"], "commit": ["OPERATION_NOT_ATTEMPTED"], "abort": ["PRODUCER_FENCED"]},
}

# What each record of one produce-batch fails with on Apache Kafka 4.4, per client and batch
# (the letters of clients/python/drivers.py PRODUCE_BATCH_SPEC: k keyed, n no key, o two hours
# old, f two hours ahead, L over max.message.bytes). Kafka refuses the batch with INVALID_RECORD
# (INVALID_TIMESTAMP when a timestamp is at fault) and lists the records at fault (KIP-467).
# librdkafka fails those with INVALID_RECORD and the rest with _INVALID_DIFFERENT_RECORD, but a
# batch with one record at fault whole with the partition's error; the Java client fails
# those with InvalidRecordException (the partition's exception when there is one) carrying
# the record's message, the rest with a KafkaException saying another record was invalid.
# A batch over max.message.bytes is refused whole (MESSAGE_TOO_LARGE); the Java client splits
# it and sends it again without end, so it is left to librdkafka.
PRODUCE_ERRORS_ON_KAFKA = {
    "confluent-kafka": {
        "knkkn": ["_INVALID_DIFFERENT_RECORD", "INVALID_RECORD", "_INVALID_DIFFERENT_RECORD",
                  "_INVALID_DIFFERENT_RECORD", "INVALID_RECORD"],
        "knk": ["INVALID_RECORD"] * 3,
        "kokfk": ["_INVALID_DIFFERENT_RECORD", "INVALID_RECORD", "_INVALID_DIFFERENT_RECORD", "INVALID_RECORD",
                  "_INVALID_DIFFERENT_RECORD"],
        "kok": ["INVALID_TIMESTAMP"] * 3,
        "kLk": ["MSG_SIZE_TOO_LARGE"] * 3,
    },
    "java": {
        "knkkn": ["KafkaException", "InvalidRecordException", "KafkaException", "KafkaException",
                  "InvalidRecordException"],
        "knk": ["KafkaException", "InvalidRecordException", "KafkaException"],
        "kokfk": ["KafkaException", "InvalidRecordException", "KafkaException", "InvalidRecordException",
                  "KafkaException"],
        "kok": ["KafkaException", "InvalidTimestampException", "KafkaException"],
    },
}
PRODUCE_ERRORS_CLIENTS = list(PRODUCE_ERRORS_ON_KAFKA)


def uid():
    return uuid.uuid4().hex[:8]


class Results:
    def __init__(self):
        self.outcomes = {}  # (broker, client, check) -> (ok, detail)

    def record(self, broker, client, check, ok, detail=""):
        self.outcomes[(broker, client, check)] = (ok, detail)
        line = f"{'PASS' if ok else 'FAIL'} [{broker}] {client} {check}: {CHECKS[check]}"
        print(line + ("" if ok else f" -- {detail}"), flush=True)


# ---------------------------------------------------------------- scenarios

def drive(client, role, *args, timeout_s=240):
    """Runs one role of a client's driver: its output lines, its "E" lines, and what went
    wrong in a few words (the first E lines, or the end of its stderr)."""
    try:
        r = subprocess.run(CLIENTS[client](role, *args), capture_output=True, text=True, timeout=timeout_s)
        lines, stderr = r.stdout.splitlines(), r.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        lines = (out.decode(errors="replace") if isinstance(out, bytes) else out).splitlines()
        stderr = f"timed out after {timeout_s} s"
    errors = [l[2:] for l in lines if l.startswith("E ")]
    return lines, errors, "; ".join(errors[:3]) or stderr.strip()[-300:]


def basic(res, broker, client, count):
    topic = f"compat-{client}-{uid()}"
    lines, errors, why = drive(client, "basic", broker.bootstrap, topic, str(count))
    t = [l for l in lines if l.startswith("T ")]
    res.record(broker.name, client, "basic.created", t == ["T 3"], f"{t} {why}")
    produced = [l.split(" ", 4)[1:] for l in lines if l.startswith("P ")]
    consumed = [l.split(" ", 4)[1:] for l in lines if l.startswith("C ")]
    res.record(broker.name, client, "basic.acked", len(produced) == count and not errors,
               f"{len(produced)} of {count} acknowledged; {why}")
    want = sorted((k, v) for _, _, k, v in produced)
    got = sorted((k, v) for _, _, k, v in consumed)
    res.record(broker.name, client, "basic.read-back", len(want) == count and got == want,
               f"{len(got)} read ({len(set(got))} distinct) of {len(want)} produced")
    by_part = collections.defaultdict(list)
    for p, o, k, v in consumed:
        by_part[p].append((int(o), int(v[1:]), k))
    in_order = all([o for o, _, _ in recs] == sorted(o for o, _, _ in recs) and
                   [i for _, i, _ in recs] == sorted(i for _, i, _ in recs) for recs in by_part.values())
    key_parts = collections.defaultdict(set)
    for p, recs in by_part.items():
        for _, _, k in recs:
            key_parts[k].add(p)
    res.record(broker.name, client, "basic.order", bool(consumed) and in_order and all(len(s) == 1 for s in key_parts.values()),
               f"in order: {in_order}; keys in more than one partition: {[k for k, s in key_parts.items() if len(s) > 1][:5]}")
    if produced and produced[0][0] != "?":  # kcat -P does not report placements
        res.record(broker.name, client, "basic.placement", sorted(map(tuple, produced)) == sorted(map(tuple, consumed)),
                   f"{len(set(map(tuple, produced)) ^ set(map(tuple, consumed)))} records differ")
    res.record(broker.name, client, "basic.deleted", "D" in lines, why)


def produce(bootstrap, topic, values):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, key=f"k{i}", value=v)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(60):
        raise RuntimeError("records left unsent after 60 s")


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def cleanup(bootstrap, topics, groups):
    """Deletes what a scenario created (best effort: a failure here is not a check)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for delete, names in ((admin.delete_consumer_groups, groups), (admin.delete_topics, topics)):
        for f in (delete(names).values() if names else []):
            try:
                f.result(30)
            except Exception:  # noqa: BLE001
                pass


def wait_for_leaders(bootstrap, topic, partitions, timeout_s=60):
    """After a restart, Kafka answers before every partition has its leader back."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            t = admin.list_topics(topic, timeout=5).topics.get(topic)
            if t and t.error is None and len(t.partitions) == partitions and all(p.leader >= 0 for p in t.partitions.values()):
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(0.2)


def group(res, broker, client, count, can_restart):
    """Six partitions, three members: exactly once and 2/2/2; kill -9 of one member; a clean
    leave; then the broker restarts and the group resumes from its committed offsets."""
    b, name = broker.bootstrap, broker.name
    topic, grp = f"compat-g-{client}-{uid()}", f"compat-{client}-{uid()}"
    create_topic(b, topic, 6)
    produce(b, topic, [f"a{i}" for i in range(count)])
    members = [Member(client, b, topic, grp) for _ in range(3)]
    try:
        values = lambda ms: [v for m in ms for v in m.values]  # noqa: E731
        wait_until(lambda: len(values(members)) >= count and all(m.assignment and len(m.assignment) == 2 for m in members), 120)
        vals = values(members)
        res.record(name, client, "group.exactly-once", len(vals) == count and len(set(vals)) == count,
                   f"{len(vals)} consumed, {len(set(vals))} distinct, of {count}")
        shares = sorted(len(m.assignment or []) for m in members)
        owned = sorted(p for m in members for p in (m.assignment or []))
        res.record(name, client, "group.split", shares == [2, 2, 2] and owned == list(range(6)),
                   f"{[m.assignment for m in members]}")

        members[0].kill9()
        killed_at = time.time()
        produce(b, topic, [f"b{i}" for i in range(5000)])
        survivors = members[1:]
        new = lambda: {v for v in values(survivors) if v.startswith("b")}  # noqa: E731
        got_all = wait_until(lambda: len(new()) >= 5000 and sorted(p for m in survivors for p in (m.assignment or [])) == list(range(6)),
                             SESSION_TIMEOUT_S + 60)
        res.record(name, client, "group.crash", got_all, f"{len(new())} of 5000")
        res.record(name, client, "group.crash-moved",
                   sorted(p for m in survivors for p in (m.assignment or [])) == list(range(6))
                   and time.time() - killed_at >= SESSION_TIMEOUT_S * 0.8,
                   f"{[m.assignment for m in survivors]} after {time.time() - killed_at:.1f}s")

        left_at = time.time()
        survivors[0].leave()
        moved = wait_until(lambda: survivors[1].assignment == list(range(6)), 30)
        res.record(name, client, "group.leave", moved and time.time() - left_at < SESSION_TIMEOUT_S,
                   f"took {time.time() - left_at:.1f}s, {survivors[1].assignment}")
        # Everything read so far is committed before the last member leaves.
        wait_until(lambda: len(set(values(members))) >= count + 5000, 10)
        time.sleep(0.5)
        survivors[1].leave()

        if can_restart:
            produce(b, topic, [f"c{i}" for i in range(1000)])
            broker.restart()
            wait_for_leaders(b, topic, 6)
            m = Member(client, b, topic, grp)
            members.append(m)
            wait_until(lambda: len(m.values) >= 1000, 90)
            time.sleep(1.5)
            m.leave()
            res.record(name, client, "group.resume", sorted(m.values) == sorted(f"c{i}" for i in range(1000)),
                       f"{len(m.values)} consumed (want exactly the 1000 new ones), first {m.values[:3]}")
    finally:
        for m in members:
            if m.proc.poll() is None:
                m.kill9()
        cleanup(b, [topic], [grp])


def logs(members):
    """Where the members' own logs are, for a failed check's detail."""
    return "member logs: " + " ".join(m.log_path for m in members)


def consumer(res, broker, client, count, can_restart, weir_bin):
    """The consumer group protocol (KIP-848), the broker assigning: one member owns six
    partitions, then six own one each, four leave, one of the last two is killed -9; a regex
    subscription picks up a topic created after it joined; the range assignor splits 2/2/2."""
    if client not in CONSUMER_CLIENTS:
        print(f"{client} has no consumer-protocol member; skipped", flush=True)
        return
    b, name = broker.bootstrap, broker.name
    topic, grp = f"compat-c-{client}-{uid()}", f"compat-c-{client}-{uid()}"
    rx, rx_grp, range_grp = f"compat-rx-{client}-{uid()}", f"compat-rx-{uid()}", f"compat-cr-{uid()}"
    create_topic(b, topic, 6)
    produce(b, topic, [f"a{i}" for i in range(count)])
    members = [Member(client, b, topic, grp, protocol="consumer")]
    values = lambda ms: [v for m in ms for v in m.values]  # noqa: E731
    owned = lambda ms: sorted(p for m in ms for p in (m.assignment or []))  # noqa: E731
    everyone = list(members)
    try:
        wait_until(lambda: len(values(members)) >= count and members[0].assignment == list(range(6)), 120)
        res.record(name, client, "consumer.one", members[0].assignment == list(range(6))
                   and sorted(set(values(members))) == sorted(f"a{i}" for i in range(count)),
                   f"{members[0].assignment}, {len(values(members))} read of {count}; {logs(members)}")

        members += [Member(client, b, topic, grp, protocol="consumer") for _ in range(5)]
        everyone += members[1:]
        split = lambda: all(m.assignment and len(m.assignment) == 1 for m in members) and owned(members) == list(range(6))  # noqa: E731
        wait_until(split, 120)
        res.record(name, client, "consumer.split", split(), f"{[m.assignment for m in members]}; {logs(members)}")
        more = count // 2
        produce(b, topic, [f"b{i}" for i in range(more)])
        wait_until(lambda: len(set(values(members))) >= count + more, 60)
        time.sleep(1)  # a record read twice would show up by now
        vals = values(members)
        res.record(name, client, "consumer.exactly-once", len(vals) == count + more and len(set(vals)) == count + more,
                   f"{len(vals)} read, {len(set(vals))} distinct, of {count + more}; {logs(members)}")

        left_at = time.time()
        for m in members[1:5]:
            m.proc.stdin.close()
        for m in members[1:5]:
            m.leave()
        stay = [members[0], members[5]]
        halves = lambda: sorted(len(m.assignment or []) for m in stay) == [3, 3] and owned(stay) == list(range(6))  # noqa: E731
        wait_until(halves, 30)
        res.record(name, client, "consumer.leave", halves() and time.time() - left_at < SESSION_TIMEOUT_S,
                   f"{[m.assignment for m in stay]} after {time.time() - left_at:.1f}s; {logs(members)}")

        stay[1].kill9()
        killed_at = time.time()
        produce(b, topic, [f"c{i}" for i in range(2000)])
        last = stay[0]
        new = lambda: {v for v in last.values if v.startswith("c")}  # noqa: E731
        got = wait_until(lambda: len(new()) >= 2000 and last.assignment == list(range(6)), SESSION_TIMEOUT_S + 60)
        res.record(name, client, "consumer.crash", got and time.time() - killed_at >= SESSION_TIMEOUT_S * 0.8,
                   f"{last.assignment}, {len(new())} of 2000 after {time.time() - killed_at:.1f}s; {logs(stay)}")
        last.leave()

        create_topic(b, f"{rx}-1", 3)
        produce(b, f"{rx}-1", [f"r{i}" for i in range(500)])
        rm = Member(client, b, f"^{rx}-.*", rx_grp, protocol="consumer")
        everyone.append(rm)
        first = wait_until(lambda: len(set(rm.values)) >= 500, 90)
        create_topic(b, f"{rx}-2", 3)
        produce(b, f"{rx}-2", [f"s{i}" for i in range(500)])
        later = lambda: {v for v in rm.values if v.startswith("s")}  # noqa: E731
        if first:  # a member that never read the first topic fails the check already
            wait_until(lambda: len(later()) >= 500, 90)
        res.record(name, client, "consumer.regex", first and len(later()) == 500,
                   f"{len(set(rm.values))} read; of the later topic {len(later())} of 500; {logs([rm])}")
        rm.leave()

        ranged = [Member(client, b, topic, range_grp, protocol="consumer", assignor="range") for _ in range(3)]
        everyone += ranged
        total = count + more + 2000
        pairs = lambda: sorted(m.assignment or [] for m in ranged) == [[0, 1], [2, 3], [4, 5]]  # noqa: E731
        wait_until(lambda: pairs() and len(set(values(ranged))) >= total, 120)
        time.sleep(1)
        vals = values(ranged)
        res.record(name, client, "consumer.range", pairs() and len(vals) == total and len(set(vals)) == total,
                   f"{[m.assignment for m in ranged]}, {len(vals)} read, {len(set(vals))} distinct, of {total}; "
                   f"{logs(ranged)}")

        if can_restart:
            # The group's state is replayed from __consumer_offsets: the members carry on
            # with their epochs, so the group epoch does not move and nobody is reassigned.
            epoch_before = group_epoch(weir_bin, b, range_grp)
            broker.restart()
            wait_for_leaders(b, topic, 6)
            produce(b, topic, [f"d{i}" for i in range(1000)])
            later = lambda: [v for m in ranged for v in m.values if v.startswith("d")]  # noqa: E731
            wait_until(lambda: len(set(later())) >= 1000 and pairs(), 90)
            time.sleep(1)
            epoch_after = group_epoch(weir_bin, b, range_grp)
            got = later()
            res.record(name, client, "consumer.restart",
                       pairs() and len(got) == 1000 and len(set(got)) == 1000
                       and epoch_before is not None and epoch_before == epoch_after,
                       f"{[m.assignment for m in ranged]}, {len(got)} of the 1000 new read ({len(set(got))} distinct); "
                       f"group epoch {epoch_before} before, {epoch_after} after; {logs(ranged)}")
    finally:
        for m in everyone:
            if m.proc.poll() is None:
                m.kill9()
        cleanup(b, [topic, f"{rx}-1", f"{rx}-2"], [grp, rx_grp, range_grp])


def assigned(view):
    """The partitions a member's callbacks leave it with (eager: assign replaces)."""
    owned = set()
    for kind, ps in view.callbacks:
        owned = set(ps) if kind == "assign" else owned - set(ps)
    return sorted(owned)


def static(res, broker, client):
    """Static membership (KIP-345) and members that join together, classic protocol, range:
    two members subscribed at the same moment land in one first generation (static, then
    dynamic); a static member killed -9 and restarted within its session timeout gets its
    partitions back with no callback on the other, first one member then the other (one of
    them leads); then a restart with a changed subscription."""
    if client not in STATIC_CLIENTS:
        print(f"no rebalance callbacks reported by the {client} driver; skipped", flush=True)
        return
    b, name = broker.bootstrap, broker.name
    topic, topic2 = f"compat-s-{client}-{uid()}", f"compat-s2-{client}-{uid()}"
    groups = [f"compat-s-{client}-{uid()}" for _ in range(3)]
    create_topic(b, topic, 4)
    create_topic(b, topic2, 2)
    everyone = []
    try:
        # Members that join together.
        for check, grp, instance in (("static.together", groups[0], f"pair-{uid()}"),
                                     ("static.together-dynamic", groups[1], None)):
            pair = Pair(client, b, topic, grp, instance)
            everyone.append(pair)
            m0, m1 = pair.members
            split = lambda: sorted((m0.assignment or []) + (m1.assignment or [])) == [0, 1, 2, 3] \
                and len(m0.assignment) == 2  # noqa: E731
            wait_until(split, 60)
            time.sleep(2)  # a second generation, if one came, would show in the callbacks by now
            assigns = [[ps for kind, ps in m.callbacks if kind == "assign"] for m in pair.members]
            revokes = [[ps for kind, ps in m.callbacks if kind == "revoke" and ps] for m in pair.members]
            res.record(name, client, check, split() and all(len(a) == 1 for a in assigns) and revokes == [[], []],
                       f"assignments {m0.assignment} {m1.assignment}; callbacks {m0.callbacks} {m1.callbacks}; "
                       f"log {pair.log_path}")
            pair.leave()

        # Static members restarting, one after the other.
        grp = groups[2]
        produce(b, topic, [f"a{i}" for i in range(400)])
        members = {iid: Member(client, b, topic, grp, "range", iid) for iid in ("i-a", "i-b")}
        everyone += members.values()
        wait_until(lambda: all(len(m.assignment or []) == 2 for m in members.values())
                   and len({v for m in members.values() for v in m.values}) >= 400, 60)
        restarted_ok, reads_ok, details = True, True, []
        for iid, other_iid in (("i-a", "i-b"), ("i-b", "i-a")):
            old, other = members[iid], members[other_iid]
            time.sleep(1)  # its commits of what it read are made
            before, other_callbacks = list(old.assignment or []), len(other.callbacks)
            old.kill9()
            letter = "b" if iid == "i-a" else "c"
            produce(b, topic, [f"{letter}{i}" for i in range(400)])
            new = Member(client, b, topic, grp, "range", iid)
            everyone.append(new)
            members[iid] = new
            back = wait_until(lambda: new.assignment == before, 30)
            time.sleep(2)
            quiet = len(other.callbacks) == other_callbacks
            restarted_ok &= back and quiet and assigned(new) == before
            details.append(f"{iid}: {before} -> {new.assignment} (callbacks {new.callbacks}), "
                           f"other's new callbacks {other.callbacks[other_callbacks:]}")
            # What was produced while it was down, on its partitions, it reads after the restart.
            got = wait_until(lambda: len({v for m in members.values() for v in m.values if v.startswith(letter)}) >= 400, 30)
            reads_ok &= got
            details.append(f"{letter}: {len({v for m in members.values() for v in m.values if v.startswith(letter)})} of 400")
        res.record(name, client, "static.restart", restarted_ok, "; ".join(details) + f"; {logs(list(members.values()))}")
        res.record(name, client, "static.restart-reads", reads_ok, "; ".join(details))

        # A static member restarted with a changed subscription. The protocol the group runs
        # (range) does not change, so Kafka does not rebalance: it gets its old partitions
        # back, the other member sees no callback, and the new topic waits for the next
        # rebalance (KIP-345 leaves a subscription change to a rolling restart).
        a, other = members["i-a"], members["i-b"]
        time.sleep(1)
        before, other_callbacks = list(a.assignment or []), len(other.callbacks)
        a.kill9()
        new = Member(client, b, f"{topic},{topic2}", grp, "range", "i-a")
        everyone.append(new)
        members["i-a"] = new
        back = wait_until(lambda: new.assignment == before, 30)
        time.sleep(3)
        res.record(name, client, "static.changed-subscription",
                   back and new.assignment == before and assigned(new) == before
                   and len(other.callbacks) == other_callbacks,
                   f"restarted member {before} -> {new.assignment} callbacks {new.callbacks}; other's new callbacks "
                   f"{other.callbacks[other_callbacks:]}; {logs(list(members.values()))}")
        for m in members.values():
            m.leave()
    finally:
        for p in everyone:
            if p.proc.poll() is None:
                p.kill9()
        cleanup(b, [topic, topic2], groups)


def group_epoch(weir_bin, bootstrap, group):
    """A consumer group's epoch, as `weir groups describe` reads it (ConsumerGroupDescribe)."""
    import json
    r = subprocess.run([weir_bin, "groups", "describe", group, "--bootstrap", bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(f"weir groups describe {group}: {r.stderr.strip()}", flush=True)
        return None
    return json.loads(r.stdout).get("group_epoch")


def acked_records(lines):
    """The "P partition offset key value" lines: (partition, offset, key, value)."""
    return [(int(p), int(o), k, v) for p, o, k, v in (l.split(" ", 4)[1:] for l in lines if l.startswith("P "))]


def read_records(lines, reader):
    """The "R reader partition offset key value" lines of one reader."""
    return [(int(p), int(o), k, v) for tag, p, o, k, v in (l.split(" ", 5)[1:] for l in lines if l.startswith("R "))
            if tag == reader]


def events(lines):
    """The "X event detail" lines: event -> details, in order."""
    out = collections.defaultdict(list)
    for l in lines:
        if l.startswith("X "):
            parts = l.split(" ", 2)
            out[parts[1]].append(parts[2] if len(parts) > 2 else "")
    return out


def in_produce_order(records):
    """Per partition, offsets rise and so do the values' (transaction letter, index)."""
    by_part = collections.defaultdict(list)
    for p, o, _, v in records:
        m = re.match(r"([a-z]+)(\d+)$", v)
        by_part[p].append((o, (m.group(1), int(m.group(2))) if m else (v, 0)))
    return all([o for o, _ in recs] == sorted(o for o, _ in recs) and len({o for o, _ in recs}) == len(recs)
               and [s for _, s in recs] == sorted(s for _, s in recs) for recs in by_part.values())


def end_offsets(bootstrap, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"compat-probe-{uid()}", "isolation.level": "read_uncommitted"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in range(partitions)}
    finally:
        c.close()


def committed_offsets(bootstrap, group, topic, partitions):
    """The group's committed offsets, once stable (no transaction of the group still open)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    want = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    got = admin.list_consumer_group_offsets([want], require_stable=True)[group].result(30)
    return {tp.partition: tp.offset for tp in got.topic_partitions if tp.error is None}


def txn(res, broker, client, count):
    """Transactions, one driver role per part, each on its own 3-partition topics: commits,
    an abort, an open transaction, fencing, and consume-transform-produce in a group."""
    if client not in TXN_CLIENTS:
        print(f"no transaction driver for {client}; skipped", flush=True)
        return
    b, name = broker.bootstrap, broker.name
    topics, groups = [], []

    def new_topic(kind):
        t = f"compat-txn-{kind}-{client}-{uid()}"
        create_topic(b, t, 3)
        topics.append(t)
        return t

    def same(got, want):
        return sorted(got) == sorted(want)

    try:
        # 1. Five committed transactions, read with read_committed at the acknowledged places.
        lines, errors, why = drive(client, "txn-commit", b, new_topic("commit"), str(count))
        acked, committed = acked_records(lines), read_records(lines, "committed")
        res.record(name, client, "txn.commit", not errors and len(acked) == count and same(committed, acked),
                   f"{len(acked)} of {count} acknowledged, {len(committed)} read ({len(set(committed) - set(acked))} "
                   f"not as acknowledged); {why}")
        ordered = [committed]

        # 2. Committed "a", aborted "b", committed "c".
        n = count // 3
        lines, errors, why = drive(client, "txn-abort", b, new_topic("abort"), str(count))
        acked = acked_records(lines)
        committed, uncommitted = read_records(lines, "committed"), read_records(lines, "uncommitted")
        want = [r for r in acked if r[3][0] in "ac"]
        res.record(name, client, "txn.abort",
                   not errors and len(acked) == 3 * n and same(committed, want) and same(uncommitted, acked),
                   f"read_committed read {len(committed)} of {len(want)} ({sum(r[3][0] == 'b' for r in committed)} "
                   f"aborted), read_uncommitted {len(uncommitted)} of {len(acked)}; {why}")
        ordered += [committed, uncommitted]
        res.record(name, client, "txn.order", all(ordered) and all(in_produce_order(rs) for rs in ordered),
                   f"in order per reader: {[in_produce_order(rs) for rs in ordered]}")

        # 3. Committed "a", then "b" flushed in a transaction left open.
        n = count // 2
        lines, errors, why = drive(client, "txn-open", b, new_topic("open"), str(count))
        acked = acked_records(lines)
        committed, uncommitted, after = (read_records(lines, r) for r in ("committed", "uncommitted", "after"))
        first = [r for r in acked if r[3][0] == "a"]
        res.record(name, client, "txn.open-blocks",
                   not errors and len(acked) == 2 * n and same(committed, first) and same(uncommitted, acked)
                   and same(after, acked) and events(lines)["commit"] == ["ok"],
                   f"while open read_committed read {len(committed)} (want the {len(first)} committed before), "
                   f"read_uncommitted {len(uncommitted)} of {len(acked)}; after the commit {len(after)}; {why}")
        listed = {int(p): (int(lso), int(hw)) for p, lso, hw in (l.split()[1:] for l in lines if l.startswith("L "))}
        want = {}
        for p in range(3):
            opened = [o for q, o, _, v in acked if q == p and v[0] == "b"]
            if opened:  # the last stable offset is where the open transaction starts
                want[p] = (min(opened), max(opened) + 1)
        res.record(name, client, "txn.lso",
                   len(want) == 3 and listed == want and all(lso < hw for lso, hw in listed.values()),
                   f"listed (lso, hw) {listed}, want {want}; {why}")

        # 4. "f" left open by a first producer, fenced by a second that commits "g".
        lines, errors, why = drive(client, "txn-fence", b, new_topic("fence"), str(count))
        acked, ev = acked_records(lines), events(lines)
        committed, uncommitted = read_records(lines, "committed"), read_records(lines, "uncommitted")
        outcome = f"send {ev['send']}, commit {ev['commit']}, abort {ev['abort']}"
        res.record(name, client, "txn.fencing",
                   ev["second-init"] == ["ok"] and len(ev["commit"]) == 1 and ev["commit"] != ["ok"]
                   and any(e in outcome for e in FENCED_ERRORS[client]),
                   f"the first producer saw: {outcome}; the second's init: {ev['second-init']}; {why}")
        seen = {call: ev[call] for call in ("send", "commit", "abort")}
        res.record(name, client, "txn.fenced-errors", seen == FENCED_AS_ON_KAFKA[client],
                   f"saw {seen}, Apache Kafka gives {FENCED_AS_ON_KAFKA[client]}")
        fenced = [r for r in acked if r[3][0] == "f"]
        second = [r for r in acked if r[3][0] == "g"]
        res.record(name, client, "txn.fenced-abort",
                   len(fenced) == n and len(second) == n and same(committed, second) and set(fenced) <= set(uncommitted),
                   f"read_committed read {len(committed)} of the second's {len(second)} "
                   f"({sum(r[3][0] != 'g' for r in committed)} other), read_uncommitted has "
                   f"{len(set(fenced) & set(uncommitted))} of the first's {len(fenced)}; {why}")

        # 5. Consume-transform-produce in a group, one transaction aborted in the middle.
        source, sink, grp = new_topic("in"), new_topic("out"), f"compat-txn-{client}-{uid()}"
        groups.append(grp)
        produce(b, source, [f"i{i}" for i in range(count)])
        started = time.time()
        lines, errors, why = drive(client, "txn-ctp", b, source, sink, grp, str(count))
        aborted = sum(int(d) for d in events(lines)["aborted"])
        committed, uncommitted = read_records(lines, "committed"), read_records(lines, "uncommitted")
        got = [v for _, _, _, v in committed]
        res.record(name, client, "txn.consume-transform-produce",
                   not errors and aborted > 0 and same(got, [f"t-i{i}" for i in range(count)])
                   and len(uncommitted) == count + aborted,
                   f"read_committed read {len(got)} ({len(set(got))} distinct) of {count} inputs; {aborted} in the "
                   f"aborted transaction, read_uncommitted {len(uncommitted)} (want {count + aborted}); "
                   f"{time.time() - started:.1f}s; {why}")
        ends, offsets = end_offsets(b, source, 3), {}

        def settled():
            nonlocal offsets
            offsets = committed_offsets(b, grp, source, 3)
            return offsets == ends
        wait_until(settled, 15)
        res.record(name, client, "txn.sent-offsets", sum(ends.values()) == count and offsets == ends,
                   f"committed {offsets}, end offsets {ends}")
    finally:
        cleanup(b, topics, groups)


def create_topic_with(bootstrap, topic, configs):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(30)
    wait_for_leaders(bootstrap, topic, 1)


def produce_errors(res, broker, client):
    """One batch per case to a one-partition topic, each record's outcome compared with what
    Apache Kafka gives the same client; then a valid batch shows nothing refused was stored."""
    if client not in PRODUCE_ERRORS_CLIENTS:
        print(f"no produce-batch driver for {client}; skipped", flush=True)
        return
    b, name, want = broker.bootstrap, broker.name, PRODUCE_ERRORS_ON_KAFKA[client]
    topics = []

    def new_topic(kind, configs):
        t = f"compat-pe-{kind}-{client}-{uid()}"
        create_topic_with(b, t, configs)
        topics.append(t)
        return t

    def outcome(topic, spec):
        """Per record: its error's name ("O offset" when acknowledged), and the messages the
        Java client gave the records at fault, which must be Kafka's."""
        lines, _, why = drive(client, "produce-batch", b, topic, spec, timeout_s=120)
        got, messages = [], []
        for i in range(len(spec)):
            line = next((l for l in lines if l.split(" ", 2)[:2] in (["O", str(i)], ["F", str(i)])), None)
            parts = line.split(" ", 3) if line else []
            got.append(f"O {parts[2]}" if parts and parts[0] == "O" else parts[2] if len(parts) > 2 else "none")
            if len(parts) > 3 and parts[2] in ("InvalidRecordException", "InvalidTimestampException"):
                messages.append((i, parts[3]))
        return got, messages, why

    def kafka_words(topic, messages):
        pattern = (rf"Compacted topic cannot accept message without key in topic partition {re.escape(topic)}-0$|"
                   rf"Timestamp -?\d+ of message with offset (\d+) is out of range\. "
                   rf"The timestamp should be within \[-?\d+, -?\d+\]$")
        return all((m := re.match(pattern, text)) and (m.group(1) is None or int(m.group(1)) == i)
                   for i, text in messages)

    def batches(check, topic, specs):
        """One batch per spec to `topic`; each record must fail as on Apache Kafka."""
        seen, ok, why = {}, True, ""
        for spec in specs:
            got, messages, why = outcome(topic, spec)
            seen[spec] = got
            ok = ok and got == want[spec] and kafka_words(topic, messages)
        res.record(name, client, check, ok,
                   f"saw {seen}, Apache Kafka gives {({s: want[s] for s in seen})}; {why}")

    try:
        compacted = new_topic("compact", {"cleanup.policy": "compact"})
        batches("produce-errors.keyless", compacted, ("knkkn", "knk"))
        window = new_topic("ts", {"message.timestamp.before.max.ms": "3600000",
                                  "message.timestamp.after.max.ms": "3600000"})
        batches("produce-errors.timestamps", window, ("kokfk", "kok"))

        stored = {compacted: 0, window: 0}
        if "kLk" in want:
            small = new_topic("large", {"max.message.bytes": "1000"})
            got, _, why = outcome(small, "kLk")
            res.record(name, client, "produce-errors.too-large", got == want["kLk"],
                       f"saw {got}, Apache Kafka gives {want['kLk']}; {why}")
            stored[small] = 0
        ends = {t: end_offsets(b, t, 1)[0] for t in stored}
        got, _, why = outcome(compacted, "kkk")
        res.record(name, client, "produce-errors.nothing-stored", ends == stored and got == ["O 0", "O 1", "O 2"],
                   f"end offsets after the refused batches {ends}; a valid batch then got {got}; {why}")
    finally:
        cleanup(b, topics, [])


# ---------------------------------------------------------------- table

def known_differences():
    """`client` `check`: reason lines of KNOWN_DIFFERENCES.md; `*` matches every client."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "KNOWN_DIFFERENCES.md")
    known = {}
    for line in open(path):
        m = re.match(r"- `([^`]+)` `([^`]+)`: (.*)", line)
        if m:
            known[(m.group(1), m.group(2))] = m.group(3).strip()
    return known


def table(res, brokers, clients, known):
    heads = {"kafka": f"Apache Kafka {harness.kafka_version()}", "weir": "weir"}
    rows = ["| client | check | " + " | ".join(heads[b] for b in brokers) + " |",
            "|---|---|" + "---|" * len(brokers)]
    for client in clients:
        for check in CHECKS:
            cells = []
            for b in brokers:
                o = res.outcomes.get((b, client, check))
                if o is None:
                    cells.append("—")
                elif o[0]:
                    cells.append("pass")
                else:
                    k = known.get((client, check)) or known.get(("*", check))
                    cells.append("FAIL (known)" if b == "weir" and k else "FAIL")
            if any(c != "—" for c in cells):
                rows.append(f"| {client} | {check} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="both", choices=["weir", "kafka", "both"])
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS))
    ap.add_argument("--weir-bin", default=os.path.join(harness.ROOT, "target", "release", "weir"))
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--group-records", type=int, default=20000)
    ap.add_argument("--txn-records", type=int, default=2000)
    ap.add_argument("--consumer-records", type=int, default=6000)
    ap.add_argument("--bootstrap", default=os.environ.get("WEIR_COMPAT_BOOTSTRAP"))
    a = ap.parse_args()
    clients = [c for c in a.clients.split(",") if c]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        sys.exit(f"unknown client(s) {unknown}; the harness knows {list(CLIENTS)}")
    scenarios = [s for s in a.scenarios.split(",") if s]
    if any(s not in SCENARIOS for s in scenarios):
        sys.exit(f"unknown scenario in {scenarios}; there are: {', '.join(SCENARIOS)}")
    brokers = ["kafka", "weir"] if a.broker == "both" else [a.broker]
    runs = [(client, s) for client in clients for s in scenarios if s not in APP_SCENARIOS]
    runs += [(APP_SCENARIOS[s], s) for s in scenarios if s in APP_SCENARIOS]
    print("clients: " + ", ".join(f"{c} {VERSIONS[c]()}" for c in clients), flush=True)
    if any(s in APP_SCENARIOS for s in scenarios):
        print("applications: " + ", ".join(f"{APP_SCENARIOS[s]} {apps.version(s)}" for s in scenarios
                                          if s in APP_SCENARIOS), flush=True)
    res = Results()
    for bname in brokers:
        if a.bootstrap:
            broker = type("External", (), {"name": bname, "bootstrap": a.bootstrap})()
        else:
            broker = Weir(a.weir_bin) if bname == "weir" else Kafka()
            print(f"== starting {bname}; its data and log are in {broker.dir}", flush=True)
            broker.start()
        try:
            for client, scenario in runs:
                print(f"== [{bname}] {client} {scenario}", flush=True)
                before, started = dict(res.outcomes), time.time()
                try:
                    if scenario == "basic":
                        basic(res, broker, client, a.records)
                    elif scenario == "group":
                        group(res, broker, client, a.group_records, can_restart=not a.bootstrap)
                    elif scenario == "consumer":
                        consumer(res, broker, client, a.consumer_records, can_restart=not a.bootstrap, weir_bin=a.weir_bin)
                    elif scenario == "static":
                        static(res, broker, client)
                    elif scenario == "txn":
                        txn(res, broker, client, a.txn_records)
                    elif scenario == "produce-errors":
                        produce_errors(res, broker, client)
                    else:
                        record = lambda check, ok, why="": res.record(bname, client, check, ok, why)  # noqa: E731
                        getattr(apps, scenario)(record, broker.bootstrap)
                except Exception as e:  # a scenario that cannot run fails its remaining checks
                    for check in CHECKS:
                        if check.startswith(scenario + ".") and (bname, client, check) not in res.outcomes:
                            res.record(bname, client, check, False, f"scenario stopped: {e!r}")
                mine = [ok for k, (ok, _) in res.outcomes.items() if k not in before]
                print(f"{sum(mine)} passed, {len(mine) - sum(mine)} failed in {time.time() - started:.1f} s", flush=True)
        finally:
            if not a.bootstrap:
                broker.stop()
    clients += [APP_SCENARIOS[s] for s in scenarios if s in APP_SCENARIOS]
    known = known_differences()
    print()
    print(table(res, brokers, clients, known))
    print()
    bad = [(b, c, k) for (b, c, k), (ok, _) in res.outcomes.items()
           if not ok and (b == "kafka" or not (known.get((c, k)) or known.get(("*", k))))]
    passed = sum(1 for ok, _ in res.outcomes.values() if ok)
    failed = len(res.outcomes) - passed
    for b, c, k in bad:
        print(f"unexplained failure: [{b}] {c} {k}", flush=True)
    os.makedirs(harness.WORK, exist_ok=True)
    with open(os.path.join(harness.WORK, "last-run.md"), "w") as f:
        f.write(table(res, brokers, clients, known) + "\n")
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
