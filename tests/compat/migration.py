#!/usr/bin/env python3
"""Online migration of a consumer group between the classic and the consumer protocol
(KIP-848), differential against Apache Kafka: a classic group of 3 members is upgraded one
member at a time to group.protocol=consumer while records keep arriving, then rolled back
one member at a time; no record is skipped.

  migration.py [--broker weir|kafka|both] [--clients java,confluent-kafka] [--weir-bin PATH]

For each client: a topic of 6 partitions gets a record every few milliseconds for the whole
run from a producer with acks=all. Three classic members (the client's default assignment
strategy, each in its own process, committing what it read) share it. Then, one at a time,
each classic member leaves cleanly and a consumer-protocol member takes its place; then the
reverse. After every step the three live members must own the 6 partitions between them,
each at least one, and read on. The checks:

  upgrade    after the first consumer-protocol member joins, the group is a consumer group
             (ListGroups' type), and after all three are rolled the group is still one and
             its three members own 2 partitions each
  downgrade  after the last consumer-protocol member leaves, the group is classic again, and
             once all three are rolled back they own the 6 partitions
  no-skip    every record the producer had acknowledged was read by some member (a record
             read twice around a rebalance is allowed: commits are at least once)

Prints each check, and "N passed, N failed"; exits non-zero when a check fails.
"""
import argparse
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Member, Report, wait_until  # noqa: E402

PARTITIONS = 6
MEMBERS = 3
# A record every PRODUCE_INTERVAL_S: about 200 a second, so every step sees fresh records.
PRODUCE_INTERVAL_S = 0.005
# A step is done when the live members own every partition and each has read since it.
STEP_TIMEOUT_S = 90
# After the producer stops, how long the members get to read the rest.
DRAIN_TIMEOUT_S = 60
CLIENTS = ["java", "confluent-kafka"]


class Producer:
    """Produces "v<n>" round-robin over the partitions until stopped; remembers what was
    acknowledged."""

    def __init__(self, bootstrap, topic):
        from confluent_kafka import Producer as P
        self.p = P({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
        self.topic = topic
        self.acked = set()
        self.errors = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _delivered(self, err, msg):
        if err is None:
            self.acked.add(msg.value().decode())
        else:
            self.errors += 1

    def _run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                self.p.produce(self.topic, value=f"v{n}", partition=n % PARTITIONS, on_delivery=self._delivered)
                n += 1
            except BufferError:
                pass
            self.p.poll(0)
            time.sleep(PRODUCE_INTERVAL_S)
        self.p.flush(60)

    def stop(self):
        self.stopping.set()
        self.thread.join(90)


def group_type(bootstrap, group):
    """The group's type as ListGroups reports it ("classic", "consumer"), or None."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_groups(request_timeout=10).result(15)
    for g in result.valid:
        if g.group_id == group:
            return str(g.type).split(".")[-1].lower()
    return None


def settled(members):
    """The live members own every partition exactly once and evenly (no member owns two
    more than another: a member of the consumer protocol may still be giving one up to a
    newcomer while every partition is owned once)."""
    owned = sorted(p for m in members for p in (m.assignment or []))
    sizes = [len(m.assignment or []) for m in members]
    return owned == list(range(PARTITIONS)) and min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def read_since(members, marks):
    """Every member read records after `marks` (its count of values when the step began)."""
    return all(len(m.values) > marks.get(id(m), 0) for m in members)


def step(members, report_progress):
    marks = {id(m): len(m.values) for m in members}
    ok = wait_until(lambda: settled(members) and read_since(members, marks), STEP_TIMEOUT_S)
    report_progress(ok, members)
    return ok


def run_client(report, broker, client):
    from run import cleanup, create_topic  # the compat runner's topic helpers
    b = broker.bootstrap
    topic, grp = f"migrate-{client}-{uuid.uuid4().hex[:8]}", f"migrate-{client}-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic, PARTITIONS)
    producer = Producer(b, topic)
    everyone = []
    live = []

    def start(protocol):
        m = Member(client, b, topic, grp, protocol=protocol)
        everyone.append(m)
        return m

    def progress(what):
        def show(ok, members):
            print(f"  {what}: {'settled' if ok else 'NOT settled'}: {[m.assignment for m in members]}", flush=True)
        return show

    name = f"[{broker.name}] {client}"
    try:
        live = [start("classic") for _ in range(MEMBERS)]
        first = step(live, progress("3 classic members"))
        types_after_first = None
        upgrade_steps = True
        for i in range(MEMBERS):
            live[i].leave()
            live[i] = start("consumer")
            upgrade_steps &= step(live, progress(f"member {i} on the consumer protocol"))
            if i == 0:
                types_after_first = group_type(b, grp)
        upgraded_type = group_type(b, grp)
        split = sorted(len(m.assignment or []) for m in live)
        report.check(f"{name} migration.upgrade", first and upgrade_steps and types_after_first == "consumer"
                     and upgraded_type == "consumer" and split == [2, 2, 2],
                     f"type after the first member {types_after_first}, after all {upgraded_type}; "
                     f"steps settled: {first and upgrade_steps}; split {split}")

        downgrade_steps = True
        types_before_last = None
        for i in range(MEMBERS):
            if i == MEMBERS - 1:
                types_before_last = group_type(b, grp)
            live[i].leave()
            live[i] = start("classic")
            downgrade_steps &= step(live, progress(f"member {i} back on the classic protocol"))
        rolled_back_type = group_type(b, grp)
        report.check(f"{name} migration.downgrade", downgrade_steps and types_before_last == "consumer"
                     and rolled_back_type == "classic",
                     f"type before the last member {types_before_last}, after all {rolled_back_type}; "
                     f"steps settled: {downgrade_steps}")

        producer.stop()
        acked = set(producer.acked)
        seen = lambda: {v for m in everyone for v in m.values}  # noqa: E731
        wait_until(lambda: acked <= seen(), DRAIN_TIMEOUT_S)
        missing = acked - seen()
        reads = sum(len(m.values) for m in everyone)
        report.check(f"{name} migration.no-skip", not missing and producer.errors == 0 and len(acked) > 0,
                     f"{len(missing)} of {len(acked)} acknowledged records never read (e.g. {sorted(missing)[:5]}); "
                     f"{producer.errors} produce errors")
        print(f"  {len(acked)} records acknowledged, {reads} reads ({reads - len(acked)} repeated around rebalances)",
              flush=True)
    finally:
        producer.stopping.set()
        for m in everyone:
            if m.proc.poll() is None:
                m.kill9()
        for m in everyone:
            print(f"  member log: {m.log_path}", flush=True)
        cleanup(b, [topic], [grp])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_broker_args(ap)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    a = ap.parse_args()
    clients = [c for c in a.clients.split(",") if c]
    if any(c not in CLIENTS for c in clients):
        sys.exit(f"unknown client in {clients}; there are: {', '.join(CLIENTS)}")
    print("clients: " + ", ".join(f"{c} {harness.VERSIONS[c]()}" for c in clients), flush=True)
    report = Report()
    for bname, broker in harness.each_broker(a):
        for client in clients:
            print(f"== [{bname}] {client}", flush=True)
            run_client(report, broker, client)
    report.finish()


if __name__ == "__main__":
    main()
