#!/usr/bin/env python3
"""Transactions side by side: Apache Kafka then weir, each driven by `weir bench txn` (one
transactional producer speaking the Kafka protocol, acks=all, 100 B records) for the matrix
{1, 10, 100 records per transaction} x {1, 4 partitions}, --duration seconds each.

Each run starts a fresh broker of each kind (compare.running), Kafka first; the table shows
the medians of --runs runs and the weir/Kafka ratios (compare.ratio_table): committed
transactions/s, p99 commit latency (EndTxn sent to answered) and p99 transaction latency
(first request of a transaction to its EndTxn answer).

Usage: bench/txn.py [--runs 3] [--duration 10] [--weir-bin target/release/weir] [--out bench/last-run-txn.md]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

RECORDS_PER_TXN = (1, 10, 100)
PARTITIONS = (1, 4)


def row(records, partitions, metric):
    return f"{records} x 100 B per txn, {partitions} partition{'s' if partitions > 1 else ''}: {metric}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds measured per workload")
    ap.add_argument("--producers", type=int, default=1)
    ap.add_argument("--weir-bin", default=os.path.join(compare.ROOT, "target", "release", "weir"))
    ap.add_argument("--out", default=os.path.join(compare.ROOT, "bench", "last-run-txn.md"))
    args = ap.parse_args()
    cp = compare.classpath()
    results = {"kafka": {}, "weir": {}}
    # Rows grouped by metric, in the matrix's order.
    metrics = ("committed transactions/s", "p99 commit latency (ms)", "p99 transaction latency (ms)")
    for kind in results:
        for metric in metrics:
            for records in RECORDS_PER_TXN:
                for partitions in PARTITIONS:
                    results[kind][row(records, partitions, metric)] = []

    def add(kind, name, value):
        results[kind].setdefault(name, []).append(value)

    for run in range(args.runs):
        for kind in ("kafka", "weir"):
            compare.log(f"run {run + 1}/{args.runs}: {kind}")
            with compare.running(kind, cp, args.weir_bin) as (b, _):
                for records in RECORDS_PER_TXN:
                    for partitions in PARTITIONS:
                        r = compare.weir_bench(args.weir_bin, b.bootstrap, "txn", "--topic", f"txn{partitions}",
                                               "--records-per-txn", records, "--partitions", partitions,
                                               "--producers", args.producers, "--duration", f"{args.duration}s")
                        compare.log(f"  {records} x 100 B, {partitions} partition(s): {r['protocol']}, {r['txn_per_s']:.0f} txn/s, commit p99 "
                                    f"{r['commit_p99_ms']:.1f} ms, txn p99 {r['txn_p99_ms']:.1f} ms, retries {r['retries']}")
                        for metric, key in zip(metrics, ("txn_per_s", "commit_p99_ms", "txn_p99_ms")):
                            add(kind, row(records, partitions, metric), r[key])
    table = compare.ratio_table(results)
    with open(args.out, "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
