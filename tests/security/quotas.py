#!/usr/bin/env python3
"""Client quotas, Apache Kafka against weir, as a real producer sees them.

  quotas.py [--broker kafka|weir|both] [--weir-bin PATH] [--quota BYTES_PER_S] [--show]

On each broker, Kafka's own kafka-configs gives the client id `quota-limited` a
producer_byte_rate of QUOTA bytes per second (and --describe must show it as Kafka shows
it). Then two confluent-kafka producers run at the same time, each as fast as it can, for
RUN_S seconds, to a topic each: `quota-limited`, and `quota-free`, whose client id has no
quota. Each counts the bytes the broker acknowledged (key and value of each delivered
record) second by second, and reads the throttle time the broker reported from
librdkafka's statistics.

How Kafka holds a rate is a sawtooth, and weir's must be the same: a rate is measured over
11 one-second samples, a new rate counts as if ten windows had passed (`Rate.windowSize`),
so a client may send about ten seconds' worth of its quota at once; it is then throttled to
a trickle until that burst's sample leaves the window, about 11 s later, when the next
burst goes. So the rate is measured over whole periods: from the first second to the
first burst that starts MEASURE_S or more seconds in (a burst is a second with more than
BURST_FACTOR times the quota). Apache Kafka 4.4 shows the same shape
(`--show` prints the seconds).

What is checked, on each broker:
- the limited producer's acknowledged bytes per second, over whole periods spanning at
  least MEASURE_S seconds, are within 10 % of QUOTA, and the broker reported a throttle
  time to it;
- the free producer, running beside it, is not held to the quota: its rate over the whole
  run is at least FREE_FACTOR times QUOTA, and it saw no throttle time. (It paces itself
  at FREE_PACE_FACTOR times QUOTA, to bound what a run writes.)
- a confluent-kafka consumer with client id `quota-consumer`, given a consumer_byte_rate
  of QUOTA the same way, reads the free producer's topic meanwhile: over whole periods its
  consumed bytes per second are within CONSUMER_TOLERANCE (15 %) of QUOTA, and the broker
  reported a throttle time to it. The bound is looser because Kafka answers a throttled
  Fetch empty (see CONSUMER_TOLERANCE).

A run takes about a minute per broker.

Prints one PASS/FAIL line per check and "N passed, N failed"; exits non-zero on any failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.join(os.path.dirname(HERE), "compat")
sys.path.insert(0, COMPAT)
from harness import Kafka, Report, Weir, add_broker_args, broker_names, kafka_tool  # noqa: E402

LIMITED, FREE = "quota-limited", "quota-free"
CONSUMER = "quota-consumer"  # reads FREE under a consumer_byte_rate
QUOTA_DEFAULT = 1024 * 1024  # bytes per second
MEASURE_S = 30
RUN_S = MEASURE_S + 20  # room for the period that ends the measure (Kafka's is 11-12 s)
BURST_FACTOR = 3
FREE_FACTOR = 3  # the free producer must do at least this many times the quota
# The free producer paces itself at this many times the quota, so a run writes a bounded
# amount (under 1 GB per broker at the default quota); that is still far above the quota.
FREE_PACE_FACTOR = 16
TOLERANCE = 0.10
# The consumer's bound is looser: Kafka answers a throttled Fetch empty and uncounts its
# bytes, so its consumer averages a little under the quota (0.94 of it in our runs), where
# weir's gets the records with the throttle time and averages a little over it.
CONSUMER_TOLERANCE = 0.15
RECORD_BYTES = 1000
PRODUCER_TIMEOUT_S = RUN_S + 60


def produce(bootstrap, topic, client_id, seconds, pace):
    """The producer role: sends RECORD_BYTES records as fast as it may (at most `pace`
    bytes per second when given) for `seconds`, printing one JSON line per second:
    acknowledged bytes in that second and the largest throttle time librdkafka's statistics
    reported so far."""
    from confluent_kafka import Producer
    acked = [0]
    throttle_max_ms = [0]
    lock = threading.Lock()

    def delivered(err, msg):
        if err is None:
            with lock:
                acked[0] += len(msg.value()) + len(msg.key() or b"")

    def stats(text):
        s = json.loads(text)
        for b in s.get("brokers", {}).values():
            t = b.get("throttle", {}).get("max", 0)
            with lock:
                throttle_max_ms[0] = max(throttle_max_ms[0], t)

    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "acks": "all",
                  "linger.ms": 5, "batch.size": 65536, "queue.buffering.max.kbytes": 4096,
                  "statistics.interval.ms": 1000, "stats_cb": stats, "on_delivery": delivered})
    value = b"v" * (RECORD_BYTES - 8)
    start = time.monotonic()
    second, last = 0, 0
    n = 0
    while True:
        now = time.monotonic() - start
        if now >= second + 1:
            with lock:
                total, throttle = acked[0], throttle_max_ms[0]
            print(json.dumps({"second": second, "acked": total - last, "throttle_ms": throttle}), flush=True)
            last = total
            second += 1
            if second >= seconds:
                break
        if pace and n * RECORD_BYTES > pace * now:
            p.poll(0.005)
            continue
        try:
            p.produce(topic, value, key=b"%08d" % (n % 100_000_000))
            n += 1
        except BufferError:
            p.poll(0.01)
            continue
        p.poll(0)
    p.flush(10)


def consume(bootstrap, topic, client_id, seconds):
    """The consumer role: reads `topic` from its start as fast as it may for `seconds`,
    printing one JSON line per second: the bytes (key and value) consumed in that second and
    the largest throttle time librdkafka's statistics reported so far."""
    from confluent_kafka import Consumer, TopicPartition
    throttle_max_ms = [0]

    def stats(text):
        s = json.loads(text)
        for b in s.get("brokers", {}).values():
            throttle_max_ms[0] = max(throttle_max_ms[0], b.get("throttle", {}).get("max", 0))

    c = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                  "enable.auto.commit": False, "statistics.interval.ms": 1000, "stats_cb": stats})
    c.assign([TopicPartition(topic, 0, 0)])
    start = time.monotonic()
    second, consumed = 0, 0
    while second < seconds:
        for m in c.consume(1000, 0.05):
            if m.error() is None:
                consumed += len(m.value() or b"") + len(m.key() or b"")
        if time.monotonic() - start >= second + 1:
            print(json.dumps({"second": second, "acked": consumed, "throttle_ms": throttle_max_ms[0]}), flush=True)
            consumed = 0
            second += 1
    c.close()


def run_producer(broker, topic, client_id, seconds, pace, out, role="produce"):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--role", role, "--bootstrap",
                           broker.bootstrap, "--topic", topic, "--client-id", client_id, "--seconds",
                           str(seconds), "--pace", str(pace)], capture_output=True, text=True,
                          timeout=PRODUCER_TIMEOUT_S)
    out[client_id] = ([json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")],
                      proc.returncode, proc.stderr[-2000:])


def period_rate(per_second, quota):
    """Bytes per second from the first second to the first burst that starts MEASURE_S or
    more seconds in, and that many seconds; (0, None) without such a burst."""
    end = next((i for i in range(MEASURE_S, len(per_second))
                if per_second[i] > BURST_FACTOR * quota and per_second[i - 1] <= BURST_FACTOR * quota), None)
    return (sum(per_second[:end]) / end, end) if end else (0.0, None)


def configs(broker, *args):
    return kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, *args)


def check_broker(report, name, broker, quota, show):
    for topic in (LIMITED, FREE):
        code, text = kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic",
                                topic, "--partitions", "1")
        report.check(f"{name}: topic {topic} created", code == 0, text)
    code, text = configs(broker, "--alter", "--entity-type", "clients", "--entity-name", LIMITED,
                         "--add-config", f"producer_byte_rate={quota}")
    report.check(f"{name}: kafka-configs sets producer_byte_rate={quota} on client {LIMITED}",
                 code == 0 and text == f"Completed updating config for client {LIMITED}.", f"exit {code}: {text}")
    code, text = configs(broker, "--alter", "--entity-type", "clients", "--entity-name", CONSUMER,
                         "--add-config", f"consumer_byte_rate={quota}")
    report.check(f"{name}: kafka-configs sets consumer_byte_rate={quota} on client {CONSUMER}",
                 code == 0 and text == f"Completed updating config for client {CONSUMER}.", f"exit {code}: {text}")
    code, text = configs(broker, "--describe", "--entity-type", "clients", "--entity-name", LIMITED)
    want = f"Quota configs for client-id '{LIMITED}' are producer_byte_rate={float(quota)}"
    report.check(f"{name}: kafka-configs --describe shows the quota", code == 0 and text == want,
                 f"exit {code}: {text!r}, want {want!r}")
    # The quota reaches Kafka's brokers through their metadata; give it a moment.
    time.sleep(2)

    out = {}
    paces = {LIMITED: 0, FREE: FREE_PACE_FACTOR * quota}
    threads = [threading.Thread(target=run_producer, args=(broker, t, t, RUN_S, paces[t], out))
               for t in (LIMITED, FREE)]
    threads.append(threading.Thread(target=run_producer, args=(broker, FREE, CONSUMER, RUN_S, 0, out, "consume")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_second, throttles = {}, {}
    for client_id in (LIMITED, FREE, CONSUMER):
        lines, code, err = out[client_id]
        per_second[client_id] = [l["acked"] for l in lines]
        throttles[client_id] = max((l["throttle_ms"] for l in lines), default=0)
        report.check(f"{name}: {client_id} ran {RUN_S} s", code == 0 and len(lines) == RUN_S,
                     f"exit {code}, {len(lines)} s: {err}")
        if show:
            print(f"     {client_id} bytes per second: {per_second[client_id]}", flush=True)
    limited = per_second[LIMITED]
    rate, end = period_rate(limited, quota)
    report.check(f"{name}: {LIMITED} bursts once per period, a period ending {MEASURE_S} s or more in",
                 end is not None, f"no burst after {MEASURE_S} s: {limited}")
    free = per_second[FREE]
    free_rate = sum(free) / len(free) if free else 0.0
    print(f"     {name}: {LIMITED} {rate:.0f} B/s over its first {end} s (quota {quota}), throttle up to "
          f"{throttles[LIMITED]} ms; {FREE} {free_rate:.0f} B/s over {len(free)} s, throttle up to "
          f"{throttles[FREE]} ms", flush=True)
    report.check(f"{name}: {LIMITED} is held within {TOLERANCE:.0%} of its quota over {end} s",
                 abs(rate - quota) <= TOLERANCE * quota, f"{rate:.0f} B/s against {quota}")
    report.check(f"{name}: {LIMITED} was told a throttle time", throttles[LIMITED] > 0,
                 f"throttle max {throttles[LIMITED]} ms")
    report.check(f"{name}: {FREE} is not held to the quota (at least {FREE_FACTOR}x it)",
                 free_rate >= FREE_FACTOR * quota, f"{free_rate:.0f} B/s against quota {quota}")
    report.check(f"{name}: {FREE} was never throttled", throttles[FREE] == 0,
                 f"throttle max {throttles[FREE]} ms")
    consumer_rate, consumer_end = period_rate(per_second[CONSUMER], quota)
    print(f"     {name}: {CONSUMER} {consumer_rate:.0f} B/s over its first {consumer_end} s (quota {quota}), "
          f"throttle up to {throttles[CONSUMER]} ms", flush=True)
    report.check(f"{name}: {CONSUMER} is held within {CONSUMER_TOLERANCE:.0%} of its consumer_byte_rate over whole "
                 f"periods of {MEASURE_S} s or more",
                 consumer_end is not None and abs(consumer_rate - quota) <= CONSUMER_TOLERANCE * quota,
                 f"{consumer_rate:.0f} B/s over {consumer_end} s against {quota}: {per_second[CONSUMER]}")
    report.check(f"{name}: {CONSUMER} was told a throttle time", throttles[CONSUMER] > 0,
                 f"throttle max {throttles[CONSUMER]} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_args(ap)
    ap.add_argument("--quota", type=int, default=QUOTA_DEFAULT, help="producer_byte_rate, bytes per second")
    ap.add_argument("--show", action="store_true", help="print each producer's bytes per second")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--client-id", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pace", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "consume":
        consume(args.bootstrap, args.topic, args.client_id, args.seconds)
        return
    if args.role == "produce":
        produce(args.bootstrap, args.topic, args.client_id, args.seconds, args.pace)
        return
    report = Report()
    for name in broker_names(args):
        broker = Weir(args.weir_bin) if name == "weir" else Kafka()
        print(f"== starting {name}", flush=True)
        broker.start()
        try:
            check_broker(report, name, broker, args.quota, args.show)
        finally:
            broker.stop()
            # The run writes hundreds of megabytes; nothing in it is needed afterwards.
            shutil.rmtree(broker.dir, ignore_errors=True)
    report.finish()


if __name__ == "__main__":
    main()
