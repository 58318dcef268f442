#!/usr/bin/env python3
"""weir-specific acceptance scenarios with real clients, beyond the per-client scenarios of
the compatibility harness (tests/compat): compression codecs through librdkafka and the
Java client, the cooperative-sticky assignor, independent groups, compacted topics,
static membership, broker restart, and Apache Kafka's kafka-consumer-groups tool against
weir.

Usage: acceptance.py WEIR_BIN      run every scenario, one PASS/FAIL line each
Ends with "N passed, M failed"; exits non-zero on any failure. WEIR_ACCEPT_ONLY=text runs
only the scenarios whose name contains text.
"""
import collections
import os
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat"))
from harness import Member, Report, Weir, java_classpath, kafka_tool, kafka_version, wait_until  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition, version, libversion  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

SESSION_TIMEOUT_MS = 6000
CONSUMER_GROUPS = "kafka-consumer-groups"


def uid():
    return uuid.uuid4().hex[:8]


def create_topic(bootstrap, name, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)


def produce(bootstrap, topic, values, codec="none", key_of=lambda i, v: f"key-{i % 1000}"):
    """Produces with idempotence; returns {partition: [values in offset order]}."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": codec,
                  "linger.ms": 5})
    placed = collections.defaultdict(list)
    errors = []

    def done(err, msg):
        if err:
            errors.append(err)
        else:
            placed[msg.partition()].append((msg.offset(), msg.value().decode()))

    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, key=key_of(i, v), value=v, on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
        if i % 5000 == 0:
            p.poll(0)
    remaining = p.flush(60)
    if errors or remaining:
        raise RuntimeError(f"produce failed: {errors[:3]} ({remaining} unsent)")
    return {k: [v for _, v in sorted(vs)] for k, vs in placed.items()}


def read_partitions(bootstrap, topic, partitions, expected_total, timeout_s=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uid()}", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = collections.defaultdict(list)
    n, deadline = 0, time.time() + timeout_s
    while n < expected_total and time.time() < deadline:
        for m in c.consume(10000, 0.5):
            if m.error():
                continue
            got[m.partition()].append(m.value().decode())
            n += 1
    c.close()
    return dict(got)


# ---------------------------------------------------------------- scenarios

def kcat_scenario(r, weir):
    b = weir.bootstrap
    topic = f"kcat-{uid()}"
    create_topic(b, topic, 3)
    meta = subprocess.run(["kcat", "-b", b, "-L"], capture_output=True, text=True, timeout=30).stdout
    r.check("kcat -L lists the broker and the topic with 3 partitions",
            "broker 0 at" in meta and f'topic "{topic}" with 3 partitions' in meta, meta[:300])
    lines = [f"k{i % 50}:v{i}" for i in range(10000)]
    subprocess.run(["kcat", "-b", b, "-P", "-t", topic, "-K:"], input="\n".join(lines) + "\n", text=True, check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", b, "-C", "-t", topic, "-e", "-q", "-f", "%p|%k|%s\n"],
                         capture_output=True, text=True, timeout=60).stdout.splitlines()
    by_part = collections.defaultdict(list)
    for l in out:
        p, k, v = l.split("|")
        by_part[int(p)].append((k, v))
    got = sorted((k, v) for vs in by_part.values() for k, v in vs)
    want = sorted(tuple(l.split(":")) for l in lines)
    in_order = all([int(v[1:]) for _, v in vs] == sorted(int(v[1:]) for _, v in vs) for vs in by_part.values())
    same_key_same_partition = all(len({p for p, vs in by_part.items() if any(k == key for k, _ in vs)}) == 1 for key in {f"k{i}" for i in range(50)})
    r.check("kcat produces 10,000 keyed messages and reads them back identical", got == want, f"{len(got)} of {len(want)}")
    r.check("kcat: per partition in produce order, each key in one partition", in_order and same_key_same_partition, "")


def codecs_scenario(r, weir, count):
    b = weir.bootstrap
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        topic = f"rdk-{codec}-{uid()}"
        create_topic(b, topic, 3)
        values = [f"{codec}-{i}" for i in range(count)]
        sent = produce(b, topic, values, codec)
        got = read_partitions(b, topic, 3, count)
        r.check(f"librdkafka {codec}: {count:,} idempotent records read back per partition in order", sent == got,
                f"sent {sum(map(len, sent.values()))} got {sum(map(len, got.values()))}")
    out = subprocess.run(["java", "-Xmx512m", "-cp", java_classpath(), "Scenarios", "codecs", b, f"java-{uid()}", str(count)],
                         capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith(("PASS ", "FAIL ")):
            r.check(line[5:].split(":")[0] if line.startswith("FAIL") else line[5:], line.startswith("PASS"), line)
    if out.returncode != 0 and "FAIL" not in out.stdout:
        r.check("java codecs scenario ran", False, out.stderr[-500:])


def group_scenario(r, weir, kind, strategy):
    """Six partitions, 20,000 keyed messages, three members: exactly once, 2/2/2; then one
    member is killed -9, then one leaves cleanly."""
    b = weir.bootstrap
    label = f"{kind} {strategy}"
    topic, group = f"grp-{uid()}", f"g-{uid()}"
    create_topic(b, topic, 6)
    produce(b, topic, [f"a{i}" for i in range(20000)], key_of=lambda i, v: f"k{i}")
    members = [Member(kind, b, topic, group, strategy) for _ in range(3)]
    try:
        all_values = lambda: [v for m in members for v in m.values]  # noqa: E731
        wait_until(lambda: len(all_values()) >= 20000 and all(m.assignment and len(m.assignment) == 2 for m in members), 90)
        vals = all_values()
        r.check(f"{label}: 20,000 messages consumed exactly once across 3 members",
                len(vals) == 20000 and len(set(vals)) == 20000, f"{len(vals)} consumed, {len(set(vals))} distinct")
        shares = sorted(len(m.assignment or []) for m in members)
        owned = sorted(p for m in members for p in (m.assignment or []))
        r.check(f"{label}: partitions split 2/2/2", shares == [2, 2, 2] and owned == list(range(6)),
                f"{[m.assignment for m in members]}; member logs: {[m.log_path for m in members]}, broker log: {weir.dir}/weir.log")

        # Failover: kill -9 one member; after its session timeout the others take over.
        members[0].kill9()
        killed_at = time.time()
        produce(b, topic, [f"b{i}" for i in range(5000)], key_of=lambda i, v: f"k{i}")
        survivors = members[1:]
        got_all = wait_until(lambda: len({v for m in survivors for v in m.values if v.startswith("b")}) >= 5000, SESSION_TIMEOUT_MS / 1000 + 60)
        r.check(f"{label}: after kill -9 of a member, 5,000 more messages all consumed by the others", got_all,
                f"{len({v for m in survivors for v in m.values if v.startswith('b')})} of 5000")
        r.check(f"{label}: the killed member's partitions moved after its session timeout",
                sorted(p for m in survivors for p in (m.assignment or [])) == list(range(6)) and time.time() - killed_at >= SESSION_TIMEOUT_MS / 1000 * 0.8,
                f"{[m.assignment for m in survivors]}")

        # Clean leave: reassignment without waiting for the session timeout.
        left_at = time.time()
        survivors[0].leave()
        moved = wait_until(lambda: survivors[1].assignment == list(range(6)), 30)
        r.check(f"{label}: a clean leave reassigns without waiting for the session timeout",
                moved and time.time() - left_at < SESSION_TIMEOUT_MS / 1000, f"took {time.time() - left_at:.1f}s, {survivors[1].assignment}")
    finally:
        for m in members:
            if m.proc.poll() is None:
                m.kill9()


def compaction_scenario(r, weir_bin):
    """A compacted topic keeps the newest value of each key for librdkafka and for Kafka's
    console consumer; __consumer_offsets is compacted too, and a restart still finds the
    newest committed offset. Its own broker, with small segments and a busy cleaner."""
    weir = Weir(weir_bin, "--log-cleaner-interval-ms", "300", "--offsets-topic-segment-bytes", "16384",
                "--offsets-topic-partitions", "1").start()
    try:
        b = weir.bootstrap
        topic = f"cmp-{uid()}"
        create_topic(b, topic, 1, {"cleanup.policy": "compact", "segment.bytes": "16384"})
        # Batches of at most 16 KiB, so the records spread over many segments and only the
        # last few thousand stay in the active segment, which is never cleaned.
        p = Producer({"bootstrap.servers": b, "enable.idempotence": True, "compression.type": "lz4",
                      "linger.ms": 5, "batch.size": 16384})
        for i in range(20000):
            while True:
                try:
                    p.produce(topic, key=f"k{i % 100}", value=f"v{i}-" + "x" * 100)
                    break
                except BufferError:
                    p.poll(0.05)
        if p.flush(60):
            raise RuntimeError("produce to the compacted topic did not finish")
        newest = {f"k{i % 100}": f"v{i}-" + "x" * 100 for i in range(20000)}

        def read_all():
            c = Consumer({"bootstrap.servers": b, "group.id": f"reader-{uid()}", "enable.auto.commit": False})
            high = c.get_watermark_offsets(TopicPartition(topic, 0), 10)[1]
            c.assign([TopicPartition(topic, 0, 0)])
            got, last, deadline = [], -1, time.time() + 30
            while last < high - 1 and time.time() < deadline:
                for m in c.consume(10000, 0.5):
                    if not m.error():
                        got.append((m.offset(), m.key().decode(), m.value().decode()))
                        last = m.offset()
            c.close()
            return got

        compacted = wait_until(lambda: len(read_all()) < 20000 / 2, 60)
        # The first clean may have run while records were still coming: wait until two reads
        # a cleaner interval apart agree, so every reader below sees the same log.
        got, deadline = read_all(), time.time() + 30
        while time.time() < deadline:
            time.sleep(1)
            again = read_all()
            if again == got:
                break
            got = again
        last_by_key = {k: v for _, k, v in got}
        r.check("compacted topic: librdkafka reads fewer records than were written, offsets rising",
                compacted and all(a[0] < b_[0] for a, b_ in zip(got, got[1:])), f"{len(got)} of 20000")
        r.check("compacted topic: the newest value of every key is there", last_by_key == newest,
                f"{len(last_by_key)} keys, {sum(last_by_key.get(k) == v for k, v in newest.items())} newest")
        _, out = kafka_tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
                         "--timeout-ms", "10000", "--property", "print.key=true", "--property", "key.separator=|")
        lines = [l.split("|", 1) for l in out.splitlines() if l.startswith("k") and "|" in l]
        r.check("compacted topic: Kafka's console consumer reads the same records", [(k, v) for _, k, v in got] == [tuple(l) for l in lines],
                f"{len(lines)} lines against {len(got)}")
        out = subprocess.run([weir_bin, "consume", topic, "-b", b, "--from-beginning", "-e", "--format", "%o|%k|%v"],
                             capture_output=True, text=True, timeout=60)
        mine = [tuple(l.split("|", 2)) for l in out.stdout.splitlines()]
        r.check("compacted topic: `weir consume` reads the same records and stops at the end",
                out.returncode == 0 and mine == [(str(o), k, v) for o, k, v in got], f"{len(mine)} lines against {len(got)}: {out.stderr[-300:]}")

        # Commit 3,000 times to one group: __consumer_offsets rolls 16 KiB segments and compacts.
        group = f"cmp-{uid()}"
        c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
        for i in range(1, 3001):
            c.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=False)
        c.close()
        offsets_dir = os.path.join(weir.dir, "data", "__consumer_offsets-0")
        log_bytes = lambda: sum(os.path.getsize(os.path.join(offsets_dir, f)) for f in os.listdir(offsets_dir) if f.endswith(".log"))  # noqa: E731
        # The cleaner runs every 300 ms; the last commits are cleaned at its next run or so.
        cleaned = wait_until(lambda: log_bytes() < 64 * 1024, 30)
        r.check("__consumer_offsets is compacted: 3,000 commits of one partition take under 64 KiB",
                cleaned, f"{log_bytes()} bytes in .log files")
        weir.stop()
        weir.start()
        c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
        committed = c.committed([TopicPartition(topic, 0)], 10)[0].offset
        c.close()
        r.check("after compaction and a restart the group's newest committed offset is back", committed == 3000, f"{committed}")
    finally:
        weir.stop()


def independent_groups_scenario(r, weir):
    b = weir.bootstrap
    topic = f"ind-{uid()}"
    create_topic(b, topic, 3)
    produce(b, topic, [f"v{i}" for i in range(3000)])
    groups = [Member("confluent-kafka", b, topic, f"ind-{uid()}") for _ in range(2)]
    try:
        ok = wait_until(lambda: all(len(set(m.values)) >= 3000 for m in groups), 60)
        r.check("two groups on one topic each receive every message", ok, f"{[len(set(m.values)) for m in groups]}")
    finally:
        for m in groups:
            m.leave()


def restart_scenario(r, weir):
    """Committed offsets, topics, configs and records survive a broker restart."""
    b = weir.bootstrap
    topic, group = f"rs-{uid()}", f"rs-{uid()}"
    create_topic(b, topic, 3, {"retention.ms": "86400000", "cleanup.policy": "delete"})
    produce(b, topic, [f"x{i}" for i in range(1000)])
    m = Member("confluent-kafka", b, topic, group)
    wait_until(lambda: len(m.values) >= 1000, 60)
    m.leave()
    weir.stop()
    weir.start()
    admin = AdminClient({"bootstrap.servers": b})
    topics = admin.list_topics(timeout=10).topics
    cfg = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    value = list(cfg.values())[0].result(10)["retention.ms"].value
    r.check("restart: the topic with its 3 partitions and its config are back",
            topic in topics and len(topics[topic].partitions) == 3 and value == "86400000", f"retention.ms={value}")
    got = read_partitions(b, topic, 3, 1000)
    r.check("restart: all 1,000 records are back", sum(map(len, got.values())) == 1000, f"{sum(map(len, got.values()))}")
    produce(b, topic, [f"y{i}" for i in range(500)])
    m = Member("confluent-kafka", b, topic, group)
    wait_until(lambda: len(m.values) >= 500, 60)
    time.sleep(1)
    m.leave()
    r.check("restart: the group resumes from its committed offsets (only the 500 new messages)",
            sorted(m.values) == sorted(f"y{i}" for i in range(500)), f"{len(m.values)} consumed, first {m.values[:3]}")
    return topic, group


def kafka_tools_scenario(r, weir, topic, group):
    """Apache Kafka's own kafka-consumer-groups tool against weir."""
    b = weir.bootstrap
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--list")
    r.check("kafka-consumer-groups --list shows the group", code == 0 and group in out.split(), out[-300:])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--describe", "--group", group)
    rows = [l.split() for l in out.splitlines() if l.startswith(group)]
    lag_ok = rows and all(row[1] == topic and row[3] == row[4] and row[5] == "0" for row in rows)
    r.check("kafka-consumer-groups --describe: current offset, log-end offset, lag 0 per partition",
            code == 0 and len(rows) == 3 and lag_ok, out[-500:])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--describe", "--group", group, "--state")
    r.check("kafka-consumer-groups --describe --state shows Empty", code == 0 and "Empty" in out, out[-300:])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--dry-run")
    r.check("kafka-consumer-groups --reset-offsets --dry-run plans offset 0", code == 0 and out.count(" 0") >= 3, out[-300:])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    m = Member("confluent-kafka", b, topic, group)
    ok = wait_until(lambda: len(m.values) >= 1500, 60)
    m.leave()
    r.check("reset --to-earliest --execute: the group consumes everything again", code == 0 and ok and len(set(m.values)) == 1500, f"{len(m.values)}")
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic, "--shift-by", "-10", "--execute")
    m = Member("confluent-kafka", b, topic, group)
    wait_until(lambda: len(m.values) >= 30, 30)
    time.sleep(1)
    m.leave()
    r.check("reset --shift-by -10: the last 10 records of each partition come again", code == 0 and len(m.values) == 30, f"{len(m.values)}")
    # Reprocess from a point in time: records produced after the mark come again, none before.
    time.sleep(1.1)
    mark = time.strftime("%Y-%m-%dT%H:%M:%S.000", time.localtime())  # the tool reads local time
    time.sleep(1.1)
    produce(b, topic, [f"z{i}" for i in range(300)])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic,
                           "--to-datetime", mark, "--execute")
    m = Member("confluent-kafka", b, topic, group)
    wait_until(lambda: len(m.values) >= 300, 30)
    time.sleep(1)
    m.leave()
    r.check("reset --to-datetime: exactly the records produced after that time come again",
            code == 0 and sorted(m.values) == sorted(f"z{i}" for i in range(300)), f"{len(m.values)} consumed, {out[-200:]}")
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--delete-offsets", "--group", group, "--topic", topic)
    r.check("kafka-consumer-groups --delete-offsets", code == 0 and "Error" not in out, out[-300:])
    code, out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", b, "--delete", "--group", group)
    r.check("kafka-consumer-groups --delete", code == 0 and "successful" in out, out[-300:])


def static_membership_scenario(r, weir):
    b = weir.bootstrap
    topic, group = f"st-{uid()}", f"st-{uid()}"
    create_topic(b, topic, 4)
    a = Member("confluent-kafka", b, topic, group, "range", "instance-a")
    c = Member("confluent-kafka", b, topic, group, "range", "instance-c")
    try:
        wait_until(lambda: a.assignment and c.assignment and len(a.assignment) == 2 and len(c.assignment) == 2, 60)
        before = (list(a.assignment or []), list(c.assignment or []))
        a.kill9()
        history = []
        stop = threading.Event()
        threading.Thread(target=lambda: [history.append(list(c.assignment or [])) or time.sleep(0.05) for _ in iter(lambda: stop.is_set(), True)], daemon=True).start()
        a2 = Member("confluent-kafka", b, topic, group, "range", "instance-a")
        ok = wait_until(lambda: a2.assignment == before[0], 30)
        stop.set()
        r.check("static member restarted within its session timeout gets its partitions back",
                ok, f"before {before[0]}, after {a2.assignment}")
        r.check("...without a rebalance of the other member", all(h == before[1] for h in history if h), f"{set(map(tuple, history))}")
        a2.leave()
    finally:
        for m in (a, c):
            if m.proc.poll() is None:
                m.kill9()


def main():
    weir = Weir(sys.argv[1]).start()
    count = int(os.environ.get("WEIR_ACCEPT_RECORDS", "100000"))
    r = Report()
    print(f"clients: confluent-kafka {version()[0]} (librdkafka {libversion()[0]}), "
          f"Apache Kafka's Java client and tools {kafka_version()}", flush=True)
    scenarios = [
        ("kcat", lambda: kcat_scenario(r, weir)),
        ("codecs", lambda: codecs_scenario(r, weir, count)),
        ("groups confluent-kafka cooperative-sticky", lambda: group_scenario(r, weir, "confluent-kafka", "cooperative-sticky")),
        ("independent groups", lambda: independent_groups_scenario(r, weir)),
        ("compaction", lambda: compaction_scenario(r, sys.argv[1])),
        ("static membership", lambda: static_membership_scenario(r, weir)),
    ]
    only = os.environ.get("WEIR_ACCEPT_ONLY")
    try:
        for name, run in scenarios:
            if only and only not in name:
                continue
            try:
                run()
            except Exception as e:  # a scenario that cannot run is a failure, never a skip
                r.check(f"{name} scenario ran", False, repr(e))
        if not only or "restart" in only:
            try:
                topic, group = restart_scenario(r, weir)
                kafka_tools_scenario(r, weir, topic, group)
            except Exception as e:
                r.check("restart and kafka-consumer-groups scenarios ran", False, repr(e))
    finally:
        weir.stop()
    r.finish()


if __name__ == "__main__":
    main()
