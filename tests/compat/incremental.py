#!/usr/bin/env python3
"""Incremental reconciliation on the consumer group protocol (KIP-848), differential against
Apache Kafka: in a group of 10 members on group.protocol=consumer, when one member joins or
leaves, the members that keep their partitions never stop fetching for longer than one
heartbeat interval, measured from their receive timestamps.

  incremental.py [--broker weir|kafka|both] [--clients franz-go,confluent-kafka] [--weir-bin PATH]

For each client: a topic of 20 partitions gets a record on every partition every 20 ms for
the whole run (clients/go/fetchgap's producer). Ten members join (franz-go's or
confluent-kafka's, each in its own process, printing the wall-clock time of every poll that
returned records, per partition, and every change of its assignment). Once they own two
partitions each and read from all of them:

  baseline  a quiet window with no event: the largest gap between two receipts on any
            partition. It shows what the measurement reads when nothing happens, and it must
            itself be within the bound, or the check could never fail for the right reason.
  join      an 11th member starts; until the group is stable again (every partition owned by
            one member, 1 or 2 each, every member reading all of its partitions), the largest
            gap on every partition a member owned both before and after the join.
  leave     one of the first ten leaves cleanly; the same measurement.

Each check passes when its largest gap is at most the brokers' consumer heartbeat interval
(both are started with the same one, harness.CONSUMER_GROUP_FLAGS and kafka/start.sh). Prints
the figures per broker, client and event, a table, and "N passed, N failed"; exits non-zero
when a check fails. Needs install.sh first (it builds .work/fetchgap).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import CLIENTS_DIR, WORK, Report, wait_until  # noqa: E402

PARTITIONS = 20
MEMBERS = 10
PRODUCE_INTERVAL_MS = 20
HEARTBEAT_INTERVAL_MS = int(harness.CONSUMER_GROUP_FLAGS[harness.CONSUMER_GROUP_FLAGS.index(
    "--group-consumer-heartbeat-interval-ms") + 1])
# The bounded waits: the first ten members to own two partitions each and read them; the
# group to be stable again after a join or a leave (Kafka takes a few heartbeats).
FIRST_STABLE_TIMEOUT_S = 90
EVENT_STABLE_TIMEOUT_S = 30
# The quiet window of the baseline; how much before an event its window opens; how long
# after the group is stable again the receipts are still collected, so a gap that
# straddles the window's end is seen whole.
BASELINE_S = 3.0
LEAD_S = 0.5
SETTLE_S = 1.5
# A member reads a partition when its last receipt from it is this recent.
READING_WITHIN_MS = 1000

MEMBER_CLIENTS = {
    "franz-go": lambda *args: [os.path.join(WORK, "fetchgap"), "member", *args],
    "confluent-kafka": lambda *args: [sys.executable, os.path.join(CLIENTS_DIR, "python", "fetchgap.py"), "member", *args],
}


def now_ms():
    return int(time.time() * 1000)


class GapMember:
    """One member process and what it printed: per partition its receipts (ms, first offset,
    last offset, count, first record's timestamp), and the history of its assignment (ms,
    partitions)."""

    def __init__(self, name, client, bootstrap, topic, group):
        self.name = name
        self.log_path = tempfile.mkstemp(prefix=f"fetchgap-{client}-{name}-", suffix=".log")[1]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(MEMBER_CLIENTS[client](bootstrap, topic, group), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True)
        self.receipts = {}
        self.assignments = []
        self.left_ms = None
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            with self.lock:
                if parts[0] == "R" and len(parts) == 7:
                    ms, partition, first, last, count, first_ts = map(int, parts[1:])
                    self.receipts.setdefault(partition, []).append((ms, first, last, count, first_ts))
                elif parts[0] == "A" and len(parts) in (2, 3):
                    owned = frozenset(int(p) for p in parts[2].split(",")) if len(parts) == 3 else frozenset()
                    self.assignments.append((int(parts[1]), owned))
                elif parts[0] == "L":
                    self.left_ms = int(parts[1])

    def owned(self, at_ms=None):
        """The partitions it owned at at_ms (default now)."""
        with self.lock:
            owned = frozenset()
            for ms, ps in self.assignments:
                if at_ms is not None and ms > at_ms:
                    break
                owned = ps
            return owned

    def given_back(self, partition, start_ms):
        """Whether partition was revoked and assigned to it again since start_ms."""
        with self.lock:
            return any(ms > start_ms and partition not in ps for ms, ps in self.assignments)

    def last_receipt_ms(self, partition):
        with self.lock:
            r = self.receipts.get(partition)
            return r[-1][0] if r else None

    def reading(self):
        """Owns at least one partition and has read from each of them lately."""
        owned, now = self.owned(), now_ms()
        return bool(owned) and all((self.last_receipt_ms(p) or 0) >= now - READING_WITHIN_MS for p in owned)

    def largest_gap(self, partition, start_ms, end_ms, until_ms):
        """The largest gap between two consecutive receipts from partition that overlaps
        [start_ms, end_ms], the time since the last receipt counted up to until_ms: (gap ms,
        receipt before it, receipt after it or None)."""
        with self.lock:
            rs = list(self.receipts.get(partition, []))
        worst = (0, None, None)
        for before, after in zip(rs, rs[1:]):
            if after[0] >= start_ms and before[0] <= end_ms and after[0] - before[0] > worst[0]:
                worst = (after[0] - before[0], before, after)
        if not rs or rs[-1][0] < end_ms:
            last = rs[-1] if rs else None
            gap = until_ms - (last[0] if last else start_ms)
            if gap > worst[0]:
                worst = (gap, last, None)
        return worst

    def leave(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Producer:
    """clients/go/fetchgap's producer: a record on every partition every PRODUCE_INTERVAL_MS."""

    def __init__(self, bootstrap, topic):
        self.log_path = tempfile.mkstemp(prefix="fetchgap-producer-", suffix=".log")[1]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([os.path.join(WORK, "fetchgap"), "produce", bootstrap, topic, str(PARTITIONS),
                                          str(PRODUCE_INTERVAL_MS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        self.errors = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("E "):
                self.errors.append(line[2:].strip())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})  # kept alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def cleanup(bootstrap, topic, group):
    """Deletes the group and the topic (best effort: a failure here is not a check)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for f in list(admin.delete_consumer_groups([group]).values()) + list(admin.delete_topics([topic]).values()):
        try:
            f.result(30)
        except Exception:  # noqa: BLE001
            pass


def stable(members):
    """Every partition owned by exactly one member, the split even (sizes differ by at most
    one), and every member reading all it owns."""
    owned = [m.owned() for m in members]
    every = sorted(p for ps in owned for p in ps)
    sizes = [len(ps) for ps in owned]
    return every == list(range(PARTITIONS)) and max(sizes) - min(sizes) <= 1 and all(m.reading() for m in members)


def measure(members, before_ms, start_ms, end_ms, until_ms):
    """For every member and partition it owned at before_ms and still owns now, the largest
    gap between its receipts in [start_ms, end_ms]: (gap, member, partition, before, after)
    per kept partition, worst first."""
    gaps = []
    for m in members:
        for p in sorted(m.owned(before_ms) & m.owned()):
            gap, before, after = m.largest_gap(p, start_ms, end_ms, until_ms)
            gaps.append((gap, m, p, before, after))
    return sorted(gaps, key=lambda g: -g[0])


def describe(gaps, before_ms, event_ms=None):
    """The figures of one measurement, where its worst gap was, and what came after it: many
    records at once, the first produced long before it arrived, means the member was not
    fetching; one record produced just before it arrived means nothing was produced."""
    if not gaps:
        return "no member kept a partition"
    gap, m, p, before, after = gaps[0]
    at = lambda ms: f"{(ms - event_ms) / 1000:+.3f} s from the event" if event_ms else time.strftime(  # noqa: E731
        "%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"
    where = f"member {m.name} partition {p}"
    if before:
        where += f", from {at(before[0])} (offset {before[2]})"
    if after:
        where += (f" to {at(after[0])} (offsets {after[1]}-{after[2]}, {after[3]} records, the first produced "
                  f"{after[0] - after[4]} ms before it was received)")
    else:
        where += " with no receipt since"
    back = [f"{g[1].name} partition {g[2]}" for g in gaps if g[1].given_back(g[2], before_ms)]
    return (f"max gap {gap} ms over {len(gaps)} kept partitions (bound {HEARTBEAT_INTERVAL_MS} ms); worst: {where}; "
            f"member log {m.log_path}" + (f"; revoked and given back in between: {', '.join(back)}" if back else ""))


def run_client(report, figures, broker, client):
    """The three checks for one client against one broker."""
    b, tag = broker.bootstrap, f"[{broker.name}] {client}"
    topic, group = f"fetchgap-{uuid.uuid4().hex[:8]}", f"fetchgap-{uuid.uuid4().hex[:8]}"
    create_topic(b, topic, PARTITIONS)
    producer = Producer(b, topic)
    members = [GapMember(f"m{i}", client, b, topic, group) for i in range(MEMBERS)]
    everyone = list(members)
    checks = ("baseline", "join", "leave")
    done = []

    def check(event, gaps, before_ms, event_ms=None, extra=""):
        worst = gaps[0][0] if gaps else None
        figures[(broker.name, client, event)] = worst
        text = describe(gaps, before_ms, event_ms) + extra
        print(f"{tag} {event}: {text}", flush=True)
        done.append(event)
        report.check(f"{tag} {event}", bool(gaps) and worst <= HEARTBEAT_INTERVAL_MS,
                     f"max gap {worst} ms > {HEARTBEAT_INTERVAL_MS} ms (see the line above)" if gaps else text)

    try:
        if not wait_until(lambda: stable(members) and all(len(m.owned()) == 2 for m in members), FIRST_STABLE_TIMEOUT_S):
            raise RuntimeError(f"the first {MEMBERS} members did not each own and read 2 partitions within "
                               f"{FIRST_STABLE_TIMEOUT_S} s: {[sorted(m.owned()) for m in members]}")
        time.sleep(1)

        # The baseline: a quiet window, every partition kept.
        start = now_ms()
        time.sleep(BASELINE_S)
        end = now_ms()
        time.sleep(SETTLE_S)
        check("baseline", measure(members, start, start, end, now_ms()), start)

        # 1. An 11th member joins.
        event = now_ms()
        joiner = GapMember(f"m{MEMBERS}", client, b, topic, group)
        everyone.append(joiner)
        members.append(joiner)
        if not wait_until(lambda: stable(members), EVENT_STABLE_TIMEOUT_S):
            raise RuntimeError(f"not stable {EVENT_STABLE_TIMEOUT_S} s after the join: {[sorted(m.owned()) for m in members]}")
        end = now_ms()
        time.sleep(SETTLE_S)
        check("join", measure(members[:MEMBERS], event, event - LEAD_S * 1000, end, now_ms()), event, event,
              f"; stable after {(end - event) / 1000:.1f} s")

        # 2. One of the first ten leaves cleanly.
        leaver = members.pop(0)
        event = now_ms()
        leaver.leave()
        if not wait_until(lambda: stable(members), EVENT_STABLE_TIMEOUT_S):
            raise RuntimeError(f"not stable {EVENT_STABLE_TIMEOUT_S} s after the leave: {[sorted(m.owned()) for m in members]}")
        end = now_ms()
        time.sleep(SETTLE_S)
        check("leave", measure(members, event, event - LEAD_S * 1000, end, now_ms()), event, event,
              f"; {leaver.name} left, stable after {(end - event) / 1000:.1f} s")
        if producer.errors:
            print(f"{tag} the producer had {len(producer.errors)} failed records, first: {producer.errors[0]}", flush=True)
    except Exception as e:  # noqa: BLE001 - a run that cannot go on fails its remaining checks
        for event in checks:
            if event not in done:
                figures[(broker.name, client, event)] = None
                report.check(f"{tag} {event}", False, f"not measured: {e}")
    finally:
        for m in everyone:
            if m.proc.poll() is None:
                m.proc.stdin.close()
        for m in everyone:
            m.leave()
        producer.stop()
        cleanup(b, topic, group)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_broker_args(ap)
    ap.add_argument("--clients", default=",".join(MEMBER_CLIENTS))
    a = ap.parse_args()
    clients = [c for c in a.clients.split(",") if c]
    if any(c not in MEMBER_CLIENTS for c in clients):
        sys.exit(f"unknown client in {clients}; there are: {', '.join(MEMBER_CLIENTS)}")
    if not os.path.exists(os.path.join(WORK, "fetchgap")):
        sys.exit(f"{WORK}/fetchgap is missing: run tests/compat/install.sh first")
    brokers = harness.broker_names(a)
    print("clients: " + ", ".join(f"{c} {harness.VERSIONS[c]()}" for c in clients), flush=True)
    print(f"{PARTITIONS} partitions, a record on each every {PRODUCE_INTERVAL_MS} ms; {MEMBERS} members; "
          f"bound: the consumer heartbeat interval, {HEARTBEAT_INTERVAL_MS} ms", flush=True)
    report, figures = Report(), {}
    for bname, broker in harness.each_broker(a):
        for client in clients:
            print(f"== [{bname}] {client}", flush=True)
            run_client(report, figures, broker, client)
    print()
    print("| client | event | " + " | ".join(f"{b} max gap" for b in brokers) + " | heartbeat interval |")
    print("|---|---|" + "---|" * len(brokers) + "---|")
    for client in clients:
        for event in ("baseline", "join", "leave"):
            cells = [figures.get((b, client, event)) for b in brokers]
            print(f"| {client} | {event} | " + " | ".join("—" if c is None else f"{c} ms" for c in cells)
                  + f" | {HEARTBEAT_INTERVAL_MS} ms |")
    print()
    report.finish()


if __name__ == "__main__":
    main()
