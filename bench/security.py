#!/usr/bin/env python3
"""Produce and consume throughput over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512), weir
beside Apache Kafka, in one run.

  python3 bench/security.py [--records N] [--runs R] [--weir-bin PATH] [--out FILE]

Each broker is started with the listeners of tests/security/tls_sasl.py (the same
certificates, from tests/security/certs.sh, and the same SCRAM users), then for each
listener Kafka's own ProducerPerformance writes N records of 1 KiB with acks=all and
N x 4 records of 100 B with acks=1, and ConsumerPerformance reads the 1 KiB topic back.
Kafka runs with `-Xmx1g -Xms1g`; weir with its defaults (`--fsync always`, so an acks=all
produce is answered after fsync). Prints a markdown table of medians with two ratios:
weir/Kafka on the same listener, and each broker's figure on the listener against its
own PLAINTEXT figure.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "security"))
sys.path.insert(0, os.path.join(ROOT, "tests", "compat"))
import tls_sasl  # noqa: E402
from harness import kafka_classpath  # noqa: E402

LISTENERS = {
    "PLAINTEXT": tls_sasl.Conn("plaintext"),
    "SSL": tls_sasl.Conn("ssl"),
    "SASL_SSL SCRAM-SHA-512": tls_sasl.Conn("sasl_ssl", mechanism="SCRAM-SHA-512"),
}


def tool(cp, cls, args, timeout=900):
    out = subprocess.run(["java", "-Xmx512m", "-cp", cp, cls] + args, capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cls} failed: {out.stderr[-800:]}")
    return out.stdout


def config_file(conn, bootstrap, directory, name):
    path = os.path.join(directory, f"{name}.properties")
    with open(path, "w") as f:
        for k, v in conn.java(bootstrap).items():
            f.write(f"{k}={v}\n")
    return path


def produce(cp, config, topic, records, size, acks):
    out = tool(cp, "org.apache.kafka.tools.ProducerPerformance",
               ["--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
                "--command-config", config, "--command-property", f"acks={acks}", "linger.ms=5",
                "batch.size=65536"])
    parts = [p.strip() for p in [l for l in out.splitlines() if "records sent" in l][-1].split(",")]
    return (float(parts[1].split()[0]), float(parts[1].split("(")[1].split()[0]),
            float([p for p in parts if "99th" in p and "99.9th" not in p][0].split()[0]))


def consume(cp, config, bootstrap, topic, records):
    out = tool(cp, "org.apache.kafka.tools.ConsumerPerformance",
               ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
                "--timeout", "60000", "--command-config", config])
    fields = [f.strip() for f in [l for l in out.splitlines() if l[:2] == "20" and "," in l][-1].split(",")]
    return float(fields[3])


def measure(broker, cp, records, run, scratch):
    """{workload: figure} for every listener of one started broker."""
    figures = {}
    for name, conn in LISTENERS.items():
        bootstrap = broker.bootstrap(conn.listener)
        config = config_file(conn, bootstrap, scratch, f"{broker.name}-{conn.listener}")
        tag = f"{conn.listener}-{run}"
        _, mb, p99 = produce(cp, config, f"big-{tag}", records, 1024, "all")
        figures[f"produce 1 KiB acks=all, {name} (MB/s)"] = mb
        figures[f"produce 1 KiB acks=all p99, {name} (ms)"] = p99
        rps, _, _ = produce(cp, config, f"small-{tag}", records * 4, 100, "1")
        figures[f"produce 100 B acks=1, {name} (records/s)"] = rps
        figures[f"consume 1 KiB, {name} (MB/s)"] = consume(cp, config, bootstrap, f"big-{tag}", records)
        print(f"  {broker.name} run {run} {name}: " + ", ".join(
            f"{k.split(',')[0]} {v:,.1f}" for k, v in figures.items() if name in k), flush=True)
    return figures


def table(results):
    lines = ["| workload | Apache Kafka | weir | weir/Kafka | Kafka vs its PLAINTEXT | weir vs its PLAINTEXT |",
             "|---|---:|---:|---:|---:|---:|"]
    med = {b: {w: statistics.median(v) for w, v in r.items()} for b, r in results.items()}
    for w in med["kafka"]:
        k, x = med["kafka"][w], med["weir"][w]
        listener = max((n for n in LISTENERS if f", {n} (" in w), key=len)
        base = w.replace(f", {listener} (", ", PLAINTEXT (")
        kb, wb = med["kafka"][base], med["weir"][base]
        lines.append(f"| {w} | {k:,.1f} | {x:,.1f} | {x / k:.2f} | {k / kb:.2f} | {x / wb:.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--weir-bin", default=os.path.join(ROOT, "target", "release", "weir"))
    ap.add_argument("--out", default=os.path.join(HERE, "last-run-security.md"))
    args = ap.parse_args()
    subprocess.run([os.path.join(ROOT, "tests", "security", "certs.sh"), tls_sasl.CERTS], check=True)
    os.environ["KAFKA_HEAP"] = "-Xmx1g -Xms1g"
    cp = kafka_classpath()
    scratch = tempfile.mkdtemp(prefix="bench-security-")
    results = {"kafka": {}, "weir": {}}
    for run in range(args.runs):
        for kind in ("kafka", "weir"):
            broker = tls_sasl.SecureKafka() if kind == "kafka" else tls_sasl.SecureWeir(args.weir_bin)
            broker.start()
            try:
                for w, v in measure(broker, cp, args.records, run, scratch).items():
                    results[kind].setdefault(w, []).append(v)
            finally:
                broker.stop()
    text = table(results)
    print(text)
    with open(args.out, "w") as f:
        f.write(f"python3 bench/security.py --records {args.records} --runs {args.runs}\n\n{text}\n")


if __name__ == "__main__":
    main()
