#!/usr/bin/env python3
"""Request and controller-mutation quotas, Apache Kafka against weir, as real clients see them.

  quotas_requests.py [--broker kafka|weir|both] [--weir-bin PATH] [--show]

request_percentage (KIP-124). Kafka's own kafka-configs gives the client id `req-limited` a
request_percentage of REQUEST_PERCENTAGE (percent of one request-handling thread). Then two
confluent-kafka admin clients run side by side for LOOP_S seconds, each asking for the
metadata of every topic (a topic of LOAD_PARTITIONS partitions makes each answer cost some
work) as fast as it can: `req-limited`, and `req-free`, whose client id has no quota. Each
counts its answered requests and reads the throttle time the broker reported from
librdkafka's statistics. The quota counts the time requests spend being handled, which
differs between the brokers and the machines, so only the shape is checked:
- the limited client was told a throttle time, and the free one never was;
- the limited client got fewer than SLOWED_FACTOR times the answers the free one got.

controller_mutation_rate (KIP-599). kafka-configs gives the client id `mut-limited` a
controller_mutation_rate of 2 partitions per second (a bucket of 22). Then
clients/java/QuotaMutations.java, with Kafka's Java admin client, creates a topic of 30
partitions beside one of 5 in one request, adds partitions, deletes the big topic (each
without retrying on a quota violation, each on a new connection) and creates one more
topic the default way (retried after the throttle time). It prints one line per outcome;
the lines must be the expected ones (the second topic, the added partitions and the
deletion refused with THROTTLING_QUOTA_EXCEEDED and a throttle time; the retried creation
succeeding after waiting), the same on both brokers.

connection_creation_rate (KIP-612), last, since it limits every later connection from the
test: kafka-configs gives the address 127.0.0.1 a connection_creation_rate of
CONNECTION_RATE per second. Then CONNECTIONS_MAX connections are opened one after the other,
each sending an ApiVersions request; the first ones are answered (a new rate allows about
ten seconds' worth at once), until one is held unanswered and closed. Checked on each
broker: between SERVED_MIN and SERVED_MAX connections were served, then one was closed
unanswered within CLOSED_WITHIN_S.

A run takes well under a minute per broker.

Prints one PASS/FAIL line per check and "N passed, N failed"; exits non-zero on any failure.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.join(os.path.dirname(HERE), "compat")
sys.path.insert(0, COMPAT)
import harness  # noqa: E402
from harness import Kafka, Report, Weir, add_broker_args, broker_names, kafka_tool  # noqa: E402

REQ_LIMITED, REQ_FREE = "req-limited", "req-free"
MUT_LIMITED = "mut-limited"
REQUEST_PERCENTAGE = 1
MUTATION_RATE = 2
LOAD_TOPIC, LOAD_PARTITIONS = "req-load", 100
LOOP_S = 15
SLOWED_FACTOR = 0.5
CONNECTION_RATE = 2
CONNECTIONS_MAX = 40
SERVED_MIN, SERVED_MAX = 15, 25  # 2 per second over the ten seconds a new rate counts: ~20
CLOSED_WITHIN_S = 2.0
EXPECTED_MUTATIONS = [
    "create big(30): ok",
    "create next(5): ThrottlingQuotaExceededException throttle_ms>0=true",
    "create-partitions big(+5): ThrottlingQuotaExceededException throttle_ms>0=true",
    "delete big: ThrottlingQuotaExceededException throttle_ms>0=true",
    "create later(1), retrying: ok waited>=1s=true",
    "topics: big,later",
    "big partitions: 30",
]


def metadata_loop(bootstrap, client_id, seconds):
    """The client role: asks for every topic's metadata in a loop for `seconds`, then prints
    one JSON line: answered requests and the largest throttle time librdkafka's statistics
    reported."""
    from confluent_kafka.admin import AdminClient
    throttle_max_ms = [0]

    def stats(text):
        s = json.loads(text)
        for b in s.get("brokers", {}).values():
            throttle_max_ms[0] = max(throttle_max_ms[0], b.get("throttle", {}).get("max", 0))

    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": client_id,
                         "statistics.interval.ms": 500, "stats_cb": stats})
    start = time.monotonic()
    answered = 0
    while time.monotonic() - start < seconds:
        admin.list_topics(timeout=10)
        answered += 1
        admin.poll(0)
    # One more statistics interval, for the throttle of the last requests.
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        admin.poll(0.1)
    print(json.dumps({"answered": answered, "throttle_ms": throttle_max_ms[0]}), flush=True)


def run_loop(broker, client_id, out):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--role", "metadata", "--bootstrap",
                           broker.bootstrap, "--client-id", client_id], capture_output=True, text=True,
                          timeout=LOOP_S + 60)
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    out[client_id] = (lines[-1] if lines else None, proc.returncode, proc.stderr[-2000:])


def set_quota(report, name, broker, client_id, key, value):
    code, text = kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type",
                            "clients", "--entity-name", client_id, "--add-config", f"{key}={value}")
    report.check(f"{name}: kafka-configs sets {key}={value} on client {client_id}",
                 code == 0 and text == f"Completed updating config for client {client_id}.", f"exit {code}: {text}")


def check_request_quota(report, name, broker, show):
    code, text = kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic",
                            LOAD_TOPIC, "--partitions", str(LOAD_PARTITIONS))
    report.check(f"{name}: topic {LOAD_TOPIC} created", code == 0, text)
    set_quota(report, name, broker, REQ_LIMITED, "request_percentage", REQUEST_PERCENTAGE)
    # The quota reaches Kafka's brokers through their metadata; give it a moment.
    time.sleep(2)
    out = {}
    threads = [threading.Thread(target=run_loop, args=(broker, c, out)) for c in (REQ_LIMITED, REQ_FREE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = {}
    for client_id in (REQ_LIMITED, REQ_FREE):
        result, code, err = out[client_id]
        report.check(f"{name}: {client_id} ran {LOOP_S} s", code == 0 and result is not None, f"exit {code}: {err}")
        results[client_id] = result or {"answered": 0, "throttle_ms": 0}
    limited, free = results[REQ_LIMITED], results[REQ_FREE]
    print(f"     {name}: {REQ_LIMITED} {limited['answered']} metadata requests answered in {LOOP_S} s, throttle up "
          f"to {limited['throttle_ms']} ms; {REQ_FREE} {free['answered']}, throttle up to {free['throttle_ms']} ms",
          flush=True)
    report.check(f"{name}: {REQ_LIMITED} was told a throttle time", limited["throttle_ms"] > 0,
                 f"throttle max {limited['throttle_ms']} ms")
    report.check(f"{name}: {REQ_FREE} was never throttled", free["throttle_ms"] == 0,
                 f"throttle max {free['throttle_ms']} ms")
    report.check(f"{name}: {REQ_LIMITED} is slowed (fewer than {SLOWED_FACTOR}x the answers of {REQ_FREE})",
                 limited["answered"] < SLOWED_FACTOR * free["answered"],
                 f"{limited['answered']} against {free['answered']}")


def check_mutation_quota(report, name, broker, show):
    set_quota(report, name, broker, MUT_LIMITED, "controller_mutation_rate", MUTATION_RATE)
    time.sleep(2)
    cmd = ["java", "-Xmx256m", "-cp", harness.java_classpath(), "QuotaMutations", broker.bootstrap, MUT_LIMITED, "mut"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    if show:
        for l in lines:
            print(f"     {name}: {l}")
        print(f"     {name}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
    report.check(f"{name}: QuotaMutations ran", proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    for want, got in zip(EXPECTED_MUTATIONS, lines + [""] * len(EXPECTED_MUTATIONS)):
        report.check(f"{name}: {want}", got == want, f"got {got!r}")
    return lines


def api_versions_v0(correlation_id):
    """An ApiVersions v0 request frame: header v1 (key 18, version 0, a client id), no body."""
    client_id = b"conn-rate"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def connect_and_ask(bootstrap):
    """Opens a connection and sends ApiVersions: ("served", s) when answered, ("closed", s)
    when the broker closed it unanswered, ("silent", s) when neither within 5 s."""
    host, port = bootstrap.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(api_versions_v0(1))
        try:
            data = sock.recv(4)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except socket.timeout:
            return "silent", time.monotonic() - started
    return ("served" if data else "closed"), time.monotonic() - started


def check_connection_quota(report, name, broker):
    code, text = kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type",
                            "ips", "--entity-name", "127.0.0.1", "--add-config",
                            f"connection_creation_rate={CONNECTION_RATE}")
    report.check(f"{name}: kafka-configs sets connection_creation_rate={CONNECTION_RATE} on ip 127.0.0.1",
                 code == 0 and text == "Completed updating config for ip 127.0.0.1.", f"exit {code}: {text}")
    time.sleep(2)
    served, last = 0, None
    for _ in range(CONNECTIONS_MAX):
        last = connect_and_ask(broker.bootstrap)
        if last[0] != "served":
            break
        served += 1
    print(f"     {name}: {served} connections served, then {last[0]} after {last[1]:.2f} s", flush=True)
    report.check(f"{name}: {SERVED_MIN} to {SERVED_MAX} connections served under connection_creation_rate="
                 f"{CONNECTION_RATE}", SERVED_MIN <= served <= SERVED_MAX, f"{served} served")
    report.check(f"{name}: the next connection is closed unanswered within {CLOSED_WITHIN_S} s",
                 last[0] == "closed" and last[1] <= CLOSED_WITHIN_S, f"{last[0]} after {last[1]:.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_args(ap)
    ap.add_argument("--show", action="store_true", help="print each client's lines")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--client-id", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "metadata":
        metadata_loop(args.bootstrap, args.client_id, LOOP_S)
        return
    report = Report()
    mutation_lines = {}
    for name in broker_names(args):
        broker = Weir(args.weir_bin) if name == "weir" else Kafka()
        print(f"== starting {name}", flush=True)
        broker.start()
        try:
            check_request_quota(report, name, broker, args.show)
            mutation_lines[name] = check_mutation_quota(report, name, broker, args.show)
            check_connection_quota(report, name, broker)
        finally:
            broker.stop()
            shutil.rmtree(broker.dir, ignore_errors=True)
    if len(mutation_lines) == 2:
        report.check("weir's controller-mutation outcomes are Apache Kafka's, line by line",
                     mutation_lines["kafka"] == mutation_lines["weir"],
                     f"kafka {mutation_lines['kafka']} weir {mutation_lines['weir']}")
    report.finish()


if __name__ == "__main__":
    main()
