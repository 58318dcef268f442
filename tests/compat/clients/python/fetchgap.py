#!/usr/bin/env python3
"""The confluent-kafka member of tests/compat/incremental.py, with the same output as the
franz-go one (clients/go/fetchgap); every time printed is the wall clock in milliseconds.

  fetchgap.py member BOOTSTRAP TOPIC GROUP
      a member on group.protocol=consumer (KIP-848, the broker's uniform assignor):
      "A ms p1,p2,..." whenever its assignment changes, "R ms partition first_offset
      last_offset count first_timestamp" for each partition of each poll that returned
      records, with ms the moment the poll returned and the first record's timestamp (its
      producer's clock, CreateTime); leaves cleanly when stdin closes and prints "L ms" once
      it has left.

A poll waits for one record, then takes what else is already there without waiting:
consume(n, timeout) would wait for n records or the whole timeout, and its receipt times
would then be the timeout's ticks rather than the moments records arrived.
"""
import sys
import threading
import time

from confluent_kafka import Consumer

# Bounds one poll, so an idle member still prints its assignment changes and notices stdin
# closing within this time.
POLL_TIMEOUT_S = 0.1
# The most records one poll hands over.
POLL_RECORDS_MAX = 1000


def now_ms():
    return int(time.time() * 1000)


def member(bootstrap, topic, group):
    assigned = set()
    changed_ms = [now_ms()]  # when the assignment last changed; None once printed
    lock = threading.Lock()

    def on_assign(_consumer, partitions):
        with lock:
            assigned.update(p.partition for p in partitions if p.topic == topic)
            changed_ms[0] = now_ms()

    def on_revoke(_consumer, partitions):
        with lock:
            assigned.difference_update(p.partition for p in partitions if p.topic == topic)
            changed_ms[0] = now_ms()

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "latest",
    })
    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    out = sys.stdout
    while not stop.is_set():
        first = consumer.poll(POLL_TIMEOUT_S)
        records = ([first] + consumer.consume(POLL_RECORDS_MAX - 1, 0)) if first is not None else []
        received = now_ms()
        spans = {}  # partition -> [first offset, last offset, count, first timestamp]
        for r in records:
            if r.error():
                print(f"consume error: {r.error()}", file=sys.stderr, flush=True)
                continue
            s = spans.setdefault(r.partition(), [r.offset(), r.offset(), 0, r.timestamp()[1]])
            s[1] = r.offset()
            s[2] += 1
        for p, (first_offset, last_offset, n, first_ts) in sorted(spans.items()):
            out.write(f"R {received} {p} {first_offset} {last_offset} {n} {first_ts}\n")
        with lock:
            if changed_ms[0] is not None:
                out.write(f"A {changed_ms[0]} {','.join(str(p) for p in sorted(assigned))}\n")
                changed_ms[0] = None
        out.flush()
    consumer.close()  # leaves the group: a heartbeat with member epoch -1
    out.write(f"L {now_ms()}\n")
    out.flush()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "member":
        sys.exit("usage: fetchgap.py member BOOTSTRAP TOPIC GROUP")
    member(*sys.argv[2:])
