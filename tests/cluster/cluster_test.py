#!/usr/bin/env python3
"""Cluster mode with real clients: three `weir serve --cluster` processes on one
PostgreSQL and one bucket.

Scenarios (all by default, or --scenarios a,b):
  clients   The Java client, librdkafka (confluent-kafka) and franz-go produce and consume
            through each broker in turn (the compat runner's basic, group and txn scenarios,
            bootstrapped at that broker alone), and a group of three members, each
            bootstrapped at a different broker, splits a topic's partitions while every
            broker serves part of the fetches.
  failover  Idempotent acks=all producers and a consumer group run while one broker after
            another is killed with SIGKILL and started again (--rounds, 5 by default).
            Afterwards every acknowledged record is in the log exactly once and in order per
            partition, and the group read every one of them (from its committed offsets on,
            so repeats around a failover are allowed, gaps are not).
  scale     A fourth broker joins under load and leaves again (SIGTERM): it takes a share of
            the partitions' leadership and of the writes, nothing acknowledged is lost, the
            group reads everything, and `weir bench produce` throughput with 3 and with 4
            brokers is printed (recorded, not asserted: bench/cluster.py measures it).
  compaction A compacted topic written in rounds through every broker is compacted by the
            brokers' janitors: a consumer from the start reads fewer records than were
            written, offsets still growing, and the last value of every key. A group
            commits its offsets over and over (compacting `__consumer_offsets`); the
            controller is then killed, and the next one, replaying the compacted log,
            answers the group's last committed offsets.
  console   Every broker's console and HTTP API show the consumer groups, which only the
            controller coordinates (the others forward their group routes to it): the list,
            a group, its rebalances, the overview page and a group's page, and an offset
            reset executed through a broker that is not the controller; every broker's
            /metrics lists every partition, while group lag is published once, by the
            controller.
  outages   PostgreSQL, then (with --s3) the object store, stopped for a few seconds under
            load: a produce meanwhile fails with a retriable error, every broker stays up,
            service resumes by itself, and nothing acknowledged is lost.

Usage: cluster_test.py WEIR_BIN [--scenarios clients,failover,...] [--rounds N] [--s3]
Starts its own PostgreSQL (services.py), and with --s3 its own SeaweedFS for the bucket
(tests/cluster/install.sh builds it); without, the bucket is a directory. Prints PASS/FAIL
lines and ends with "N passed, M failed".
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from brokers import Brokers  # noqa: E402
import services  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
LEASE_MS = 3000
PARTITIONS = 6
OUTAGE_S = 4
# Errors the Java client treats as retriable (its RetriableException subclasses) that a
# broker may answer a produce with while its storage is away.
RETRIABLE = {KafkaError.KAFKA_STORAGE_ERROR, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_ENOUGH_REPLICAS,
             KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.NETWORK_EXCEPTION}
OUTAGE_LEASE_MS = 15000


class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def wait_until(cond, timeout_s, poll_s=0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(poll_s)
    return cond()


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=30).values():
        future.result(60)


def live_brokers(bootstrap):
    """The node ids Metadata names, asked of `bootstrap`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return sorted(admin.list_topics(timeout=10).brokers)


def leaders(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic, timeout=10)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def read_all(bootstrap, topic, partitions, timeout_s=60):
    """Every record of `topic` by partition, from the start to the end offsets seen now."""
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(partitions)}
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    done = {p for p, end in ends.items() if end == 0}
    deadline = time.time() + timeout_s
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                print(f"  read error: {m.error()}", flush=True)
            continue
        out[m.partition()].append(m.value().decode())
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    return out, ends, len(done) == partitions


def run_compat(report, weir_bin, bootstrap, client, node_id):
    """The compat runner's basic, group and transaction scenarios for one client, at one
    broker (whose transaction checks go to the controller unless it is the controller)."""
    cmd = [sys.executable, os.path.join(ROOT, "tests", "compat", "run.py"), "--broker", "weir",
           "--bootstrap", bootstrap, "--weir-bin", weir_bin, "--clients", client,
           "--scenarios", "basic,group,txn", "--records", "2000", "--group-records", "6000"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    tail = [line for line in r.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    for line in tail:
        print(f"  {line}", flush=True)
    report.check(f"clients: {client} through broker {node_id} alone", r.returncode == 0 and tail
                 and all(line.startswith("PASS") for line in tail),
                 f"exit {r.returncode}" + ("" if r.returncode == 0 else f"; {r.stdout[-2000:]}{r.stderr[-2000:]}"))


class GroupMember:
    """A confluent-kafka group member in a thread, remembering every value it read."""

    def __init__(self, bootstrap, topic, group, commit_every_s=0.5):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                           "enable.auto.commit": True, "auto.commit.interval.ms": int(commit_every_s * 1000),
                           "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000, "log_level": 0,
                           "partition.assignment.strategy": "cooperative-sticky"})
        self.values = set()
        self.assignment = []
        self.errors = 0
        self.stopping = threading.Event()
        self.c.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assigned(self, consumer, partitions):
        self.assignment = sorted(set(self.assignment) | {p.partition for p in partitions})

    def _revoked(self, consumer, partitions):
        self.assignment = sorted(set(self.assignment) - {p.partition for p in partitions})

    def _run(self):
        while not self.stopping.is_set():
            m = self.c.poll(0.2)
            if m is None:
                continue
            if m.error():
                self.errors += 1
                continue
            self.values.add(m.value().decode())

    def stop(self):
        self.stopping.set()
        self.thread.join(30)
        self.c.close()


class Producing:
    """An idempotent acks=all producer in a thread: values `p:seq`, each partition's sequence
    in order, remembering what was acknowledged and when the last acknowledgement came."""

    def __init__(self, bootstrap, topic, partitions, interval_s=0.002):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 120000, "log_level": 0})
        self.topic, self.partitions, self.interval_s = topic, partitions, interval_s
        self.acked = set()
        self.failed = []
        self.last_ack = time.time()
        self.last_ack_of = {p: time.time() for p in range(partitions)}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _delivered(self, err, msg):
        if err is None:
            self.acked.add(msg.value().decode())
            self.last_ack = self.last_ack_of[msg.partition()] = time.time()
        else:
            self.failed.append(str(err))

    def _run(self):
        seq = {p: 0 for p in range(self.partitions)}
        n = 0
        while not self.stopping.is_set():
            p = n % self.partitions
            try:
                self.p.produce(self.topic, value=f"{p}:{seq[p]}", partition=p, on_delivery=self._delivered)
                seq[p] += 1
                n += 1
            except BufferError:
                self.p.poll(0.05)
            self.p.poll(0)
            time.sleep(self.interval_s)
        self.p.flush(180)

    def stop(self):
        self.stopping.set()
        self.thread.join(240)


def check_log(report, name, bootstrap, topic, acked):
    """Every acknowledged value is in the log once, and each partition's values in order."""
    log, ends, complete = read_all(bootstrap, topic, PARTITIONS)
    values = [v for vs in log.values() for v in vs]
    duplicates = len(values) - len(set(values))
    missing = acked - set(values)
    out_of_order = 0
    for p, vs in log.items():
        seqs = [int(v.split(":")[1]) for v in vs]
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    report.check(name, complete and not missing and duplicates == 0 and out_of_order == 0,
                 f"{len(acked)} acknowledged, {len(values)} in the log (ends {sum(ends.values())}), "
                 f"{len(missing)} missing, {duplicates} duplicated, {out_of_order} out of order"
                 + ("" if complete else ", the log could not be read to its end"))
    return set(values)


def scenario_clients(report, args, brokers):
    for node_id in (1, 2, 3):
        live = live_brokers(brokers.address(node_id))
        report.check(f"clients: Metadata from broker {node_id} names every broker", live == [1, 2, 3], f"{live}")
    for client in args.clients.split(","):
        node_id = {"java": 2, "confluent-kafka": 3, "franz-go": 1}.get(client, 1)
        run_compat(report, args.weir_bin, brokers.address(node_id), client, node_id)

    # One group, its members bootstrapped at different brokers.
    topic, group = f"spread-{uuid.uuid4().hex[:8]}", f"spread-{uuid.uuid4().hex[:8]}"
    create_topic(brokers.address(1), topic, PARTITIONS)
    led_by = sorted(set(leaders(brokers.address(2), topic).values()))
    report.check("clients: partition leadership is spread over the three brokers", led_by == [1, 2, 3], f"{led_by}")
    before = {n: brokers.metric_sum(n, "weir_partition_bytes_out", f'topic="{topic}"') for n in (1, 2, 3)}
    members = [GroupMember(brokers.address(n), topic, group) for n in (1, 2, 3)]
    producer = Producing(brokers.address(2), topic, PARTITIONS, interval_s=0.001)
    settled = wait_until(lambda: sorted(p for m in members for p in m.assignment) == list(range(PARTITIONS))
                         and all(m.assignment for m in members), 60)
    time.sleep(3)
    producer.stop()
    read_everything = wait_until(lambda: producer.acked <= set().union(*(m.values for m in members)), 60)
    after = {n: brokers.metric_sum(n, "weir_partition_bytes_out", f'topic="{topic}"') for n in (1, 2, 3)}
    served = {n: after[n] - before[n] for n in (1, 2, 3)}
    report.check("clients: a group of three, bootstrapped at different brokers, shares the partitions",
                 settled, f"assignments {[m.assignment for m in members]}")
    report.check("clients: the group read every acknowledged record, each broker serving fetches",
                 read_everything and all(v > 0 for v in served.values()),
                 f"{len(producer.acked)} acknowledged; bytes served by broker {served}")
    for m in members:
        m.stop()


def scenario_failover(report, args, brokers):
    rng = random.Random(args.seed)
    topic, group = f"failover-{uuid.uuid4().hex[:8]}", f"failover-{uuid.uuid4().hex[:8]}"
    create_topic(brokers.bootstrap(), topic, PARTITIONS)
    everyone = brokers.bootstrap([1, 2, 3])
    producers = [Producing(everyone, topic, PARTITIONS) for _ in range(1)]
    members = [GroupMember(everyone, topic, group) for _ in range(2)]
    wait_until(lambda: all(m.values for m in members), 60)
    for rnd in range(1, args.rounds + 1):
        time.sleep(rng.uniform(2, 4))
        victim = rng.choice([1, 2, 3])
        acked_before = sum(len(p.acked) for p in producers)
        killed_at = time.time()
        brokers.kill(victim)
        # The producers carry on through the others within the lease timeout (and some
        # slack for the clients' own retry backoff and metadata refresh).
        resumed = wait_until(lambda: all(t > killed_at for p in producers for t in p.last_ack_of.values()),
                             LEASE_MS / 1000 + 20)
        resumed_in = time.time() - killed_at
        report.check(f"failover round {rnd}: broker {victim} killed, every partition takes writes again",
                     resumed, f"each partition had a write acknowledged within {resumed_in:.1f}s of the kill")
        brokers.start(victim)
    time.sleep(3)
    for p in producers:
        p.stop()
    acked = set().union(*(p.acked for p in producers))
    failed = sum(len(p.failed) for p in producers)
    report.check("failover: no produce failed for good", failed == 0,
                 f"{failed} failed deliveries: {[f for p in producers for f in p.failed][:3]}")
    check_log(report, "failover: every acknowledged record is in the log once, in order per partition",
              brokers.bootstrap(), topic, acked)
    read = wait_until(lambda: acked <= set().union(*(m.values for m in members)), 90)
    seen = set().union(*(m.values for m in members))
    report.check("failover: the group read every acknowledged record (resuming from its commits)", read,
                 f"{len(acked - seen)} of {len(acked)} never read")
    for m in members:
        m.stop()


def bench_produce(weir_bin, bootstrap, topic, records):
    """records/s of `weir bench produce` (acks=all, 1 KiB, every partition at its leader)."""
    out = subprocess.run([weir_bin, "bench", "-b", bootstrap, "-o", "json", "produce", "--topic", topic,
                          "--records", str(records), "--size", "1024", "--partitions", str(PARTITIONS),
                          "--acks", "-1", "--producers", "2"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"weir bench produce failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["records_per_s"]


def scenario_scale(report, args, brokers):
    topic, group = f"scale-{uuid.uuid4().hex[:8]}", f"scale-{uuid.uuid4().hex[:8]}"
    create_topic(brokers.bootstrap(), topic, PARTITIONS)
    producer = Producing(brokers.bootstrap([1, 2, 3]), topic, PARTITIONS)
    members = [GroupMember(brokers.bootstrap([1, 2, 3]), topic, group) for _ in range(2)]
    wait_until(lambda: all(m.values for m in members), 60)
    with_three = bench_produce(args.weir_bin, brokers.address(1), f"{topic}-bench", args.scale_records)

    brokers.start(4)
    joined = wait_until(lambda: all(live_brokers(brokers.address(n)) == [1, 2, 3, 4]
                                    and 4 in leaders(brokers.address(n), f"{topic}-bench").values()
                                    for n in (1, 2, 3, 4)), 30)
    report.check("scale: a fourth broker joins and leads a share of the partitions", joined,
                 f"live {live_brokers(brokers.address(1))}, leaders {leaders(brokers.address(1), f'{topic}-bench')}")
    bytes_before = brokers.metric_sum(4, "weir_cluster_object_put_bytes")
    with_four = bench_produce(args.weir_bin, brokers.address(1), f"{topic}-bench", args.scale_records)
    took = brokers.metric_sum(4, "weir_cluster_object_put_bytes") - bytes_before
    report.check("scale: the fourth broker takes writes for the partitions it leads", took > 0,
                 f"{took:.0f} bytes stored in the bucket by broker 4")
    print(f"INFO scale: weir bench produce (acks=all, 1 KiB, {PARTITIONS} partitions): "
          f"{with_three:,.0f} records/s with 3 brokers, {with_four:,.0f} with 4 "
          f"({with_four / with_three:.2f}x; one noisy run, see bench/cluster.py)", flush=True)

    acked_before = len(producer.acked)
    code = brokers.stop(4)
    left = wait_until(lambda: live_brokers(brokers.address(1)) == [1, 2, 3]
                      and 4 not in leaders(brokers.address(2), topic).values(), 30)
    report.check("scale: the fourth broker leaves on SIGTERM and its partitions return to the others",
                 left and code == 0, f"exit {code}, live {live_brokers(brokers.address(1))}")
    resumed_at = time.time()
    carried_on = wait_until(lambda: all(t > resumed_at for t in producer.last_ack_of.values()), 30)
    report.check("scale: every partition takes writes after the fourth broker left", carried_on,
                 f"{len(producer.acked) - acked_before} acknowledged since it left")
    producer.stop()
    report.check("scale: no produce failed for good", not producer.failed, f"{producer.failed[:3]}")
    check_log(report, "scale: every acknowledged record is in the log once, in order per partition",
              brokers.bootstrap(), topic, producer.acked)
    read = wait_until(lambda: producer.acked <= set().union(*(m.values for m in members)), 90)
    seen = set().union(*(m.values for m in members))
    report.check("scale: the group read every acknowledged record", read,
                 f"{len(producer.acked - seen)} of {len(producer.acked)} never read")
    for m in members:
        m.stop()


def read_keyed(bootstrap, topic, partitions, timeout_s=60):
    """Every record of `topic` as (partition, offset, key, value), up to the end offsets
    seen now."""
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(partitions)}
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, done = [], {p for p, end in ends.items() if end == 0}
    deadline = time.time() + timeout_s
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            if m is not None and m.error().code() == KafkaError._PARTITION_EOF:
                done.add(m.partition())
            continue
        value = None if m.value() is None else m.value().decode()
        out.append((m.partition(), m.offset(), m.key().decode(), value))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    return out


def compactions(brokers):
    return sum(brokers.metric_sum(n, "weir_cluster_compactions") for n in brokers.running())


def scenario_compaction(report, args, brokers):
    from confluent_kafka import TopicPartition
    topic, partitions, keys, rounds = f"compacted-{uuid.uuid4().hex[:8]}", 3, 30, 20
    admin = AdminClient({"bootstrap.servers": brokers.address(2)})
    config = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
    for future in admin.create_topics([NewTopic(topic, partitions, 1, config=config)]).values():
        future.result(60)
    producer = Producer({"bootstrap.servers": brokers.bootstrap([1, 2, 3]), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5, "log_level": 0})
    last = {}
    for rnd in range(rounds):
        for k in range(keys):
            # Key 0 ends as a tombstone, which stays (delete.retention.ms is a day).
            value = None if (k == 0 and rnd == rounds - 1) else f"r{rnd}"
            producer.produce(topic, key=f"k{k}", value=value)
            last[f"k{k}"] = value
        producer.flush(30)  # one flush, one chunk, per partition and round
    before = compactions(brokers)
    compacted = wait_until(lambda: compactions(brokers) >= before + partitions
                           and len(read_keyed(brokers.address(3), topic, partitions)) < keys * rounds, 45, 1)
    got = read_keyed(brokers.address(3), topic, partitions)
    report.check("compaction: the janitors compacted the topic; a consumer reads fewer records than were written",
                 compacted, f"{len(got)} of {keys * rounds} read, "
                 f"{compactions(brokers) - before:.0f} compactions")
    by_partition = {}
    for p, offset, _, _ in got:
        by_partition.setdefault(p, []).append(offset)
    growing = all(offsets == sorted(set(offsets)) for offsets in by_partition.values())
    report.check("compaction: offsets only grow in every partition", growing)
    newest = {}
    for _, _, key, value in got:
        newest[key] = value
    report.check("compaction: the last value of every key is read, its tombstone too", newest == last,
                 f"{sum(1 for k in last if newest.get(k, 'missing') != last[k])} keys differ")

    # __consumer_offsets: many commits of one group, compacted, then replayed by the next
    # controller.
    group = f"compacted-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": brokers.bootstrap([1, 2, 3]), "group.id": group,
                  "enable.auto.commit": False, "log_level": 0})
    for i in range(300):
        c.commit(offsets=[TopicPartition(topic, p, i + p) for p in range(partitions)], asynchronous=False)
    c.close()
    before = compactions(brokers)
    wait_until(lambda: compactions(brokers) > before, 30, 1)
    report.check("compaction: __consumer_offsets is compacted after many commits", compactions(brokers) > before,
                 f"{compactions(brokers) - before:.0f} compactions since the commits")
    brokers.kill(1)
    probe = Consumer({"bootstrap.servers": brokers.bootstrap([2, 3]), "group.id": group,
                      "enable.auto.commit": False, "log_level": 0})
    want = {p: 299 + p for p in range(partitions)}
    seen = {}

    def committed():
        try:
            for tp in probe.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10):
                seen[tp.partition] = tp.offset
        except Exception as e:  # the coordinator moving: asked again
            seen["error"] = str(e)
            return False
        return {p: seen.get(p) for p in range(partitions)} == want
    replayed = wait_until(committed, LEASE_MS / 1000 + 40, 1)
    probe.close()
    report.check("compaction: after the controller's kill, the next one answers the last commits", replayed,
                 f"want {want}, got {seen}")
    brokers.start(1)


def http(brokers, node_id, path, body=None, headers=None):
    """(status, decoded body) of a request to a broker's HTTP listener; JSON bodies parsed."""
    url = f"http://127.0.0.1:{brokers.ports[node_id][1]}{path}"
    data = None if body is None else json.dumps(body).encode()
    headers = dict(headers or {}, **({"Content-Type": "application/json"} if body is not None else {}))
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, raw, kind = r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read().decode(), e.headers.get("Content-Type", "")
    return status, (json.loads(raw) if kind.startswith("application/json") else raw)


def scenario_console(report, args, brokers):
    topic, group = f"console-{uuid.uuid4().hex[:8]}", f"console-{uuid.uuid4().hex[:8]}"
    create_topic(brokers.address(1), topic, PARTITIONS)
    producer = Producing(brokers.address(2), topic, PARTITIONS, interval_s=0.001)
    member = GroupMember(brokers.address(3), topic, group, commit_every_s=0.2)
    time.sleep(2)
    producer.stop()
    read = wait_until(lambda: producer.acked and producer.acked <= member.values, 60)
    report.check("console: a group consumed through broker 3", read, f"{len(producer.acked)} acknowledged")
    time.sleep(1)  # its last commit

    def group_of(node_id):
        status, body = http(brokers, node_id, "/api/v1/groups")
        if status != 200:
            return status, body
        return status, next((g for g in body["groups"] if g["group_id"] == group), None)

    seen = {n: group_of(n) for n in (1, 2, 3)}
    report.check("console: every broker's API lists the group with its member",
                 all(status == 200 and g and g["members"] == 1 for status, g in seen.values()), f"{seen}")
    described = {n: http(brokers, n, f"/api/v1/groups/{group}") for n in (1, 2, 3)}
    offsets = {n: sorted((p["topic"], p["partition"], p["committed_offset"]) for p in body.get("offsets", []))
               if status == 200 else (status, body) for n, (status, body) in described.items()}
    report.check("console: every broker describes the group with the same committed offsets",
                 offsets[1] and len(offsets[1]) == PARTITIONS and offsets[1] == offsets[2] == offsets[3], f"{offsets}")
    pages = {n: [http(brokers, n, path)[0] for path in
                 ("/", f"/groups/{group}", f"/api/v1/groups/{group}/rebalances", "/api/v1/cluster")]
             for n in (1, 2, 3)}
    report.check("console: the overview, the group's page, its rebalances and /cluster answer on every broker",
                 all(codes == [200, 200, 200, 200] for codes in pages.values()), f"{pages}")
    status, body = http(brokers, 2, "/api/v1/groups", headers={"x-weir-forwarded-by": "3"})
    report.check("console: a group request already forwarded once is not forwarded again",
                 status == 503 and body.get("code") == "coordinator_not_available", f"{status} {body}")
    counts = {n: http(brokers, n, "/api/v1/cluster")[1].get("counts", {}).get("groups") for n in (1, 2, 3)}
    report.check("console: /cluster counts the groups on every broker",
                 len(set(counts.values())) == 1 and counts[1] >= 1, f"{counts}")

    member.stop()
    status, body = http(brokers, 3, f"/api/v1/groups/{group}/offsets/reset",
                        {"spec": "to_earliest", "topics": [{"topic": topic}], "execute": True})
    status_after, after = http(brokers, 1, f"/api/v1/groups/{group}")
    committed = sorted(p["committed_offset"] for p in after.get("offsets", [])) if status_after == 200 else after
    report.check("console: an offset reset executed through broker 3 moves the group's offsets",
                 status == 200 and committed == [0] * PARTITIONS, f"{status} {body}; then {committed}")

    def partitions_listed(node_id):
        text = brokers.metrics(node_id)
        return {line.split('partition="', 1)[1].split('"', 1)[0] for line in text.splitlines()
                if line.startswith("weir_partition_high_watermark{") and f'topic="{topic}"' in line}
    listed = {}

    def all_listed():
        for n in (1, 2, 3):
            listed[n] = partitions_listed(n)
        return all(len(v) == PARTITIONS for v in listed.values())
    every = wait_until(all_listed, 20)
    report.check("console: every broker's /metrics lists every partition of the topic",
                 every, f"{ {n: sorted(v) for n, v in listed.items()} }")
    publishing = [n for n in (1, 2, 3) if f'group="{group}"' in brokers.metrics(n)]
    report.check("console: the group's metrics come from the controller alone", publishing == [1], f"{publishing}")


def probe_produce(bootstrap, topic):
    """One record from a producer that does not retry: None when it was acknowledged, else
    the error."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "enable.idempotence": False,
                  "message.timeout.ms": 30000, "request.timeout.ms": 25000, "log_level": 0})
    result = []
    p.produce(topic, value=b"probe", partition=0, on_delivery=lambda err, msg: result.append(err))
    p.flush(40)
    return result[0] if result else "no answer within 40s"


def scenario_outages(report, args, brokers):
    """PostgreSQL, then the object store, stopped for a few seconds under load. The lease
    is made longer than the outage first: a broker that cannot renew its lease for a whole
    lease period leaves the cluster (and exits), as it must."""
    pg, s3 = args.services
    brokers.lease_ms = OUTAGE_LEASE_MS
    for n in brokers.running():
        brokers.stop(n)
        brokers.start(n)
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    create_topic(brokers.bootstrap(), topic, PARTITIONS)
    producer = Producing(brokers.bootstrap(), topic, PARTITIONS)
    wait_until(lambda: len(producer.acked) > 200, 30)
    outages = [("PostgreSQL", pg.stop, pg.start)]
    if s3:
        outages.append(("the object store", s3.stop, s3.start))
    for what, stop, start in outages:
        stop()
        stopped_at = time.time()
        time.sleep(1)
        error = probe_produce(brokers.bootstrap(), topic)
        retriable = error is not None and not isinstance(error, str) and error.code() in RETRIABLE
        time.sleep(max(0.0, OUTAGE_S - (time.time() - stopped_at)))
        acked_before = len(producer.acked)
        start()
        resumed = wait_until(lambda: len(producer.acked) > acked_before + 100, 60)
        report.check(f"outages: {what} stopped for {OUTAGE_S}s: produce fails with a retriable error",
                     retriable, f"the probe's answer: {error}")
        report.check(f"outages: {what} back: service resumes by itself", resumed,
                     f"{len(producer.acked) - acked_before} acknowledged since")
        report.check(f"outages: every broker outlived the outage of {what}", brokers.running() == [1, 2, 3],
                     f"running {brokers.running()}")
    producer.stop()
    report.check("outages: no produce failed for good", not producer.failed, f"{producer.failed[:3]}")
    check_log(report, "outages: every acknowledged record is in the log once, in order per partition",
              brokers.bootstrap(), topic, producer.acked)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weir_bin")
    ap.add_argument("--scenarios", default="clients,console,failover,scale,compaction,outages")
    ap.add_argument("--clients", default="java,confluent-kafka,franz-go")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--scale-records", type=int, default=30000,
                    help="records of each `weir bench produce` run in the scale scenario")
    ap.add_argument("--s3", action="store_true", help="the bucket in a SeaweedFS server, not a directory")
    args = ap.parse_args()
    print(f"seed {args.seed}", flush=True)
    report = Report()
    workdir = tempfile.mkdtemp(prefix="weir-cluster-")
    pg = services.Postgres()
    s3 = services.Seaweed() if args.s3 else None
    if s3:
        bucket, env = s3.url(f"cluster-{uuid.uuid4().hex[:8]}"), s3.env()
    else:
        bucket, env = f"file://{workdir}/bucket", {}
        os.makedirs(f"{workdir}/bucket")
    brokers = Brokers(os.path.abspath(args.weir_bin), pg.url(), bucket, workdir, env=env, lease_ms=LEASE_MS)
    args.services = (pg, s3)
    try:
        for n in (1, 2, 3):
            brokers.start(n)
        for scenario in args.scenarios.split(","):
            print(f"== {scenario}", flush=True)
            {"clients": scenario_clients, "failover": scenario_failover,
             "scale": scenario_scale, "compaction": scenario_compaction, "console": scenario_console,
             "outages": scenario_outages}[scenario](report, args, brokers)
    except Exception as e:  # A harness failure is a failed check, with the brokers' logs.
        report.check("harness", False, f"{type(e).__name__}: {e}; logs in {workdir}")
    finally:
        brokers.close()
        pg.close()
        if s3:
            s3.close()
    print(f"{report.passed} passed, {report.failed} failed", flush=True)
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
