#!/usr/bin/env python3
"""Runs the compatibility scenarios with real clients against weir, Apache Kafka, or both
in one go, and prints a side-by-side table (client x check x broker).

  run.py                                   everything: all clients, both brokers
  run.py --broker weir --clients kcat,java --scenarios basic

Options:
  --broker weir|kafka|both     (default both)
  --clients a,b,...            (default all: kcat, confluent-kafka, java, franz-go, sarama,
                                kafka-python, aiokafka, kafkajs, rdkafka)
  --scenarios basic,group      (default both)
  --weir-bin PATH              (default target/release/weir)
  --records N                  records in the basic scenario (default 3000)
  --group-records N            records in the group scenario (default 20000)
  --bootstrap HOST:PORT        run against an already running broker instead (WEIR_COMPAT_BOOTSTRAP);
                               the group scenario's broker restart is then left out

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
from harness import CLIENTS, VERSIONS, Kafka, Member, Weir, wait_until  # noqa: E402

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
}


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

def basic(res, broker, client, count):
    topic = f"compat-{client}-{uid()}"
    try:
        r = subprocess.run(CLIENTS[client]("basic", broker.bootstrap, topic, str(count)), capture_output=True,
                           text=True, timeout=240)
        lines, stderr = r.stdout.splitlines(), r.stderr
    except subprocess.TimeoutExpired as e:
        lines, stderr = (e.stdout or b"").decode(errors="replace").splitlines(), "timed out after 240 s"
    errors = [l[2:] for l in lines if l.startswith("E ")]
    why = "; ".join(errors[:3]) or stderr.strip()[-300:]
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


def cleanup(bootstrap, topic, group):
    """Deletes what the group scenario created (best effort: a failure here is not a check)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.delete_consumer_groups([group])[group].result(30)
    except Exception:  # noqa: BLE001
        pass
    try:
        admin.delete_topics([topic])[topic].result(30)
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
        cleanup(b, topic, grp)


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
    ap.add_argument("--scenarios", default="basic,group")
    ap.add_argument("--weir-bin", default=os.path.join(harness.ROOT, "target", "release", "weir"))
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--group-records", type=int, default=20000)
    ap.add_argument("--bootstrap", default=os.environ.get("WEIR_COMPAT_BOOTSTRAP"))
    a = ap.parse_args()
    clients = [c for c in a.clients.split(",") if c]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        sys.exit(f"unknown client(s) {unknown}; the harness knows {list(CLIENTS)}")
    scenarios = a.scenarios.split(",")
    brokers = ["kafka", "weir"] if a.broker == "both" else [a.broker]
    print("clients: " + ", ".join(f"{c} {VERSIONS[c]()}" for c in clients), flush=True)
    res = Results()
    for bname in brokers:
        if a.bootstrap:
            broker = type("External", (), {"name": bname, "bootstrap": a.bootstrap})()
        else:
            broker = Weir(a.weir_bin) if bname == "weir" else Kafka()
            print(f"== starting {bname}", flush=True)
            broker.start()
        try:
            for client in clients:
                for scenario in scenarios:
                    print(f"== [{bname}] {client} {scenario}", flush=True)
                    before = dict(res.outcomes)
                    try:
                        if scenario == "basic":
                            basic(res, broker, client, a.records)
                        elif scenario == "group":
                            group(res, broker, client, a.group_records, can_restart=not a.bootstrap)
                        else:
                            sys.exit(f"unknown scenario {scenario}; there are: basic, group")
                    except Exception as e:  # a scenario that cannot run fails its remaining checks
                        for check in CHECKS:
                            if check.startswith(scenario + ".") and (bname, client, check) not in res.outcomes:
                                res.record(bname, client, check, False, f"scenario stopped: {e!r}")
                    mine = [ok for k, (ok, _) in res.outcomes.items() if k not in before]
                    print(f"{sum(mine)} passed, {len(mine) - sum(mine)} failed", flush=True)
        finally:
            if not a.bootstrap:
                broker.stop()
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
