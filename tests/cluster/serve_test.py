#!/usr/bin/env python3
"""Two `weir serve --cluster` processes make one cluster, and it survives losing one.

Goal: brokers started with --cluster (PostgreSQL) and --object-store (a directory bucket)
share one catalog, one membership and one log: a topic created through broker 1 is
listed by broker 2 with both brokers and leaders spread over both; keyed records
produced through broker 2 by an idempotent acks=all librdkafka producer are read back in
order, per partition, through broker 1 (assign(), no group); after broker 2 is killed
with SIGKILL, broker 1 lists only itself once the lease has run out, and produce and
consume still work through it; a broker frozen (SIGSTOP) past its lease exits with an
error when it wakes; a clean stop (SIGTERM) deregisters.

Usage (beside a throwaway PostgreSQL, which sets WEIR_TEST_POSTGRES_URL):
    python3 tests/cluster/services.py with-postgres -- \
        python3 tests/cluster/serve_test.py target/release/weir
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brokers import Brokers  # noqa: E402

PARTITIONS = 6
RECORDS = 600
KEYS = 40
LEASE_MS = 3000
# The lease, a renewal period for the reaping, and slack for a loaded machine.
GONE_TIMEOUT_S = 3 * LEASE_MS / 1000 + 10
TOPIC = "orders"


def metadata(bootstrap):
    """(broker ids, {partition: leader}) of TOPIC as one broker answers."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    md = admin.list_topics(topic=TOPIC, timeout=10)
    topic = md.topics[TOPIC]
    if topic.error is not None:
        raise RuntimeError(f"metadata of {TOPIC}: {topic.error}")
    return sorted(md.brokers), {p: m.leader for p, m in topic.partitions.items()}


def wait_for(what, check, timeout_s):
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last is True:
                return
        except Exception as e:  # A broker that is going away may refuse; try again.
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})")


def produce(bootstrap, start_index, count):
    """Produces `count` keyed records; returns {partition: [(offset, key, value)]}."""
    acked = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.setdefault(msg.partition(), []).append(
                (msg.offset(), msg.key().decode(), msg.value().decode()))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 30000, "log_level": 0})
    for i in range(start_index, start_index + count):
        p.produce(TOPIC, key=f"k{i % KEYS}", value=f"v{i}", on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errors, f"{left} records unsent, errors {errors[:5]}"
    assert sum(len(v) for v in acked.values()) == count
    for records in acked.values():
        records.sort()
    return acked


def consume(bootstrap, expected):
    """Reads every partition from the beginning with assign() and checks that it holds
    exactly the acknowledged records, at their offsets, in order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "serve-test-unused",
                  "enable.auto.commit": False, "log_level": 0})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    want = sum(len(v) for v in expected.values())
    got = {}
    deadline = time.time() + 60
    count = 0
    while count < want and time.time() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.setdefault(msg.partition(), []).append(
            (msg.offset(), msg.key().decode(), msg.value().decode()))
        count += 1
    c.close()
    assert count == want, f"read {count} records of {want}"
    for partition, records in expected.items():
        assert got.get(partition) == records, (
            f"partition {partition}: read {got.get(partition, [])[:5]}..., "
            f"acknowledged {records[:5]}...")
        # Each key's values come back in the order they were produced.
        by_key = {}
        for _, key, value in got[partition]:
            by_key.setdefault(key, []).append(int(value[1:]))
        assert all(v == sorted(v) for v in by_key.values()), f"partition {partition} reordered"


def main(bin_path):
    pg_url = os.environ.get("WEIR_TEST_POSTGRES_URL")
    if not pg_url:
        print("WEIR_TEST_POSTGRES_URL is not set: run under tests/cluster/services.py with-postgres",
              file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="weir-serve-test-")
    bucket = os.path.join(work, "bucket")
    os.makedirs(bucket)
    brokers = Brokers(os.path.abspath(bin_path), pg_url, f"file://{bucket}", work, lease_ms=LEASE_MS, batch_ms=5)
    try:
        brokers.start(1)
        brokers.start(2)
        boot1, boot2 = brokers.address(1), brokers.address(2)

        # 1. A topic created through broker 1 is seen by broker 2, led by both.
        admin = AdminClient({"bootstrap.servers": boot1, "log_level": 0})
        for future in admin.create_topics(
                [NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)]).values():
            future.result(30)

        def both_listed():
            brokers, leaders = metadata(boot2)
            return brokers == [1, 2] and len(leaders) == PARTITIONS and \
                set(leaders.values()) == {1, 2} or (brokers, leaders)
        wait_for("broker 2 lists both brokers and spreads the leaders", both_listed, 30)
        print("ok: broker 2 lists brokers [1, 2] and leaders on both")

        # 1b. The same new topic created at both brokers at once: one creates it, the
        #     other answers TOPIC_ALREADY_EXISTS (not a retriable NOT_CONTROLLER), as Kafka.
        for i in range(5):
            name = f"both-at-once-{i}"
            runs = [subprocess.Popen([brokers.weir_bin, "topics", "-b", boot, "create", name, "--partitions", "2"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for boot in (boot1, boot2)]
            answers = sorted((r.wait(30), r.stdout.read().strip()) for r in runs)
            assert answers[0][0] == 0 and answers[1][0] != 0 and "already exists" in answers[1][1], \
                f"creating '{name}' at both brokers at once: {answers}"
        print("ok: a topic created at both brokers at once is created once; the other hears it exists")

        # 2. Produced through broker 2, read through broker 1.
        acked = produce(boot2, 0, RECORDS)
        consume(boot1, acked)
        print(f"ok: {RECORDS} records produced via broker 2 read back in order via broker 1")

        # 3. Broker 2 dies; after its lease broker 1 is the whole cluster.
        brokers.kill(2)
        killed_at = time.time()

        def only_one():
            brokers, leaders = metadata(boot1)
            return brokers == [1] and set(leaders.values()) == {1} or (brokers, leaders)
        wait_for("broker 1 lists only itself", only_one, GONE_TIMEOUT_S)
        print(f"ok: broker 1 lists only itself {time.time() - killed_at:.1f} s after SIGKILL")
        more = produce(boot1, RECORDS, RECORDS // 2)
        for partition, records in more.items():
            acked.setdefault(partition, []).extend(records)
        consume(boot1, acked)
        print(f"ok: produce and consume through broker 1 alone ({RECORDS + RECORDS // 2} records)")
        assert brokers.running() == [1], "broker 1 exited"

        # 4. A broker frozen past its lease finds its registration gone when it wakes, and
        #    stops serving with an error rather than act as a member.
        b3 = brokers.start(3)
        wait_for("broker 1 lists broker 3", lambda: metadata(boot1)[0] == [1, 3] or metadata(boot1), 30)
        b3.send_signal(signal.SIGSTOP)
        wait_for("broker 1 drops the frozen broker 3", lambda: metadata(boot1)[0] == [1] or metadata(boot1),
                 GONE_TIMEOUT_S)
        b3.send_signal(signal.SIGCONT)
        try:
            code = b3.wait(30)
        except subprocess.TimeoutExpired:
            b3.kill()
            raise AssertionError(f"broker 3 kept running after losing its lease:\n{brokers.tail(3)}")
        with open(brokers.log_path(3)) as f:
            log = f.read()
        assert code != 0 and "lost its registration" in log, f"broker 3 exited with {code}:\n{brokers.tail(3)}"
        print(f"ok: broker 3, frozen past its lease, stopped serving (exit {code})")

        # 5. A clean stop deregisters and exits 0.
        code = brokers.stop(1)
        assert code == 0, f"broker 1 exited with {code}"
        with open(brokers.log_path(1)) as f:
            assert "deregistered" in f.read(), "broker 1 did not deregister"
        print("ok: broker 1 stopped cleanly and deregistered")

        # 6. A disk cache that cannot be kept is refused at start, in one sentence.
        bad = subprocess.run([os.path.abspath(bin_path), "serve", "--listen", "127.0.0.1:0",
                              "--cluster", pg_url, "--object-store", f"file://{bucket}",
                              "--data-dir", os.path.join(work, "data-bad"),
                              "--cluster-cache-dir", "/proc/weir-cannot-be-here"],
                             capture_output=True, text=True, timeout=60)
        errors = [line for line in bad.stderr.splitlines() if "--cluster-cache-dir" in line]
        assert bad.returncode != 0 and errors, f"exit {bad.returncode}: {bad.stderr[-2000:]}"
        print(f"ok: an unusable --cluster-cache-dir is refused: {errors[0].strip()}")
        print("PASS")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    except BaseException:
        for node_id in sorted(brokers.ports):
            print(f"--- {brokers.log_path(node_id)}\n{brokers.tail(node_id)}", file=sys.stderr)
        raise
    finally:
        brokers.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
