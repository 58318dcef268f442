#!/usr/bin/env python3
"""Client telemetry (KIP-714) against weir and Apache Kafka.

On each broker:
1. kafka-client-metrics.sh creates a subscription (1 s interval, producer metrics, matching
   two client ids), then --describe and --list show it; their exit codes and output must
   be the same on both brokers; --delete removes a second subscription made to be deleted.
2. A Java producer (Kafka's console producer, enable.metrics.push on by default) and a
   confluent-kafka producer run for a few push intervals with a matching client id; their
   logs must hold no telemetry error or warning.
3. On weir only: the broker logs once per client instance that starts pushing
   ("client instance X (client id Y) pushes telemetry"); both client ids must appear.
   Apache Kafka keeps pushed metrics only through a metrics-reporter plugin implementing
   ClientTelemetry, and without one it does not even advertise the telemetry APIs, so its
   clients never push there: that part is weir's alone.

    python3 tests/compat/telemetry.py --broker both --weir-bin target/release/weir
"""

import argparse
import logging
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Report, kafka_tool  # noqa: E402

INTERVAL_MS = 1000
RUN_S = 6
JAVA_CLIENT = "telemetry-java"
RDKAFKA_CLIENT = "telemetry-rdkafka"


def tool(broker, *args):
    return kafka_tool("kafka-client-metrics", "--bootstrap-server", broker.bootstrap, *args)


def subscriptions(broker):
    """Steps of kafka-client-metrics.sh; (name, exit code, output) each, the output made
    independent of config order."""
    out = []

    def run(name, *args):
        code, text = tool(broker, *args)
        lines = text.splitlines()
        # --describe prints a header line then `  name=value` lines in the broker's order.
        body = sorted(l for l in lines if l.startswith("  "))
        rest = [l for l in lines if not l.startswith("  ")]
        out.append((name, code, rest + body))

    run("alter", "--alter", "--name", "producers", "--metrics", "org.apache.kafka.producer.",
        "--interval", str(INTERVAL_MS), "--match", f"client_id={JAVA_CLIENT}|{RDKAFKA_CLIENT}")
    run("alter-doomed", "--alter", "--name", "doomed", "--metrics", "org.apache.kafka.consumer.",
        "--interval", "5000")
    run("describe", "--describe", "--name", "producers")
    run("list", "--list")
    run("delete", "--delete", "--name", "doomed")
    run("list-after-delete", "--list")
    run("describe-all", "--describe")
    run("describe-unknown", "--describe", "--name", "nobody")
    run("bad-interval", "--alter", "--name", "bad", "--interval", "10")
    run("bad-match", "--alter", "--name", "bad", "--match", "client_color=red")
    return out


def java_producer(broker, topic):
    """Kafka's console producer, fed a line every half second: (exit code, log lines)."""
    env = dict(os.environ, KAFKA_TOOL_HEAP="-Xmx256m -Dorg.apache.logging.log4j.level=INFO")
    p = subprocess.Popen(
        [os.path.join(harness.KAFKA_DIR, "tool"), "kafka-console-producer", "--bootstrap-server",
         broker.bootstrap, "--topic", topic, "--producer-property", f"client.id={JAVA_CLIENT}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for i in range(RUN_S * 2):
        p.stdin.write(f"line {i}\n")
        p.stdin.flush()
        time.sleep(0.5)
    out, _ = p.communicate(timeout=60)
    return p.returncode, out.splitlines()


def rdkafka_producer(broker, topic):
    """A confluent-kafka producer producing for a few push intervals: (delivered, log lines)."""
    from confluent_kafka import Producer

    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(f"{record.levelname} {record.getMessage()}")

    logger = logging.getLogger(f"rdkafka-{uuid.uuid4()}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    delivered = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "client.id": RDKAFKA_CLIENT,
                  "enable.metrics.push": True, "debug": "telemetry",
                  "error_cb": lambda e: lines.append(f"ERROR {e}")}, logger=logger)
    deadline = time.time() + RUN_S
    i = 0
    while time.time() < deadline:
        p.produce(topic, f"r{i}".encode(), on_delivery=lambda e, m: delivered.append(e is None))
        i += 1
        p.poll(0.5)
    p.flush(10)
    return sum(delivered), lines


def telemetry_trouble(lines):
    """Log lines that report a telemetry failure (an error or warning naming telemetry)."""
    bad = ("ERROR", "WARN", "FAIL")
    return [l for l in lines if "elemetry" in l and any(b in l.upper() for b in bad)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_broker_args(ap)
    a = ap.parse_args()
    report = Report()
    tool_runs = {}
    for bname, broker in harness.each_broker(a):
        runs = subscriptions(broker)
        tool_runs[bname] = runs
        for name, code, lines in runs:
            print(f"   [{bname}] {name}: exit {code}: {' | '.join(lines)}", flush=True)
        by = {n: (c, l) for n, c, l in runs}
        report.check(f"[{bname}] the subscription is made and described",
                     by["alter"][0] == 0 and by["describe"][0] == 0
                     and "  interval.ms=1000" in by["describe"][1], by["describe"])
        report.check(f"[{bname}] --list shows both, then only the one not deleted",
                     set(by["list"][1]) >= {"producers", "doomed"}
                     and "doomed" not in by["list-after-delete"][1]
                     and "producers" in by["list-after-delete"][1], (by["list"], by["list-after-delete"]))
        report.check(f"[{bname}] a bad interval and a bad match are refused",
                     by["bad-interval"][0] == 1 and by["bad-match"][0] == 1,
                     (by["bad-interval"], by["bad-match"]))

        topic = f"telemetry-{uuid.uuid4().hex[:8]}"
        code, java_log = java_producer(broker, topic)
        trouble = telemetry_trouble(java_log)
        report.check(f"[{bname}] the Java producer runs without telemetry errors",
                     code == 0 and not trouble, (code, trouble or java_log[-10:]))
        delivered, rd_log = rdkafka_producer(broker, topic)
        trouble = [l for l in rd_log if l.startswith(("ERROR", "WARNING")) and "elemetry" in l.lower() + l]
        report.check(f"[{bname}] the confluent-kafka producer runs without telemetry errors",
                     delivered > 0 and not trouble, (delivered, trouble))
        if bname == "weir":
            log = open(os.path.join(broker.dir, "weir.log"), errors="replace").read()
            for client in (JAVA_CLIENT, RDKAFKA_CLIENT):
                report.check(f"[weir] the {client} instance pushed metrics that weir kept",
                             f"(client id {client}) pushes telemetry" in log,
                             "no such line in weir.log")
    if len(tool_runs) == 2:
        for (name, kc, kl), (_, wc, wl) in zip(tool_runs["kafka"], tool_runs["weir"]):
            report.check(f"kafka-client-metrics {name}: same exit code and output on both brokers",
                         kc == wc and kl == wl, f"kafka {kc} {kl} / weir {wc} {wl}")
    report.finish()


if __name__ == "__main__":
    main()
