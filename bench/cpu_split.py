#!/usr/bin/env python3
"""Where the CPU goes in the two side-by-side workloads where weir is behind its target:
1 KiB acks=all produce (Kafka's ProducerPerformance) and a group of 3 reading a topic
(bench/java/BenchTool.java). For each broker, one after the other, it prints the client's
and the broker's CPU seconds over the run, next to the throughput. On a 2-core machine a
client that uses most of the CPU bounds the result whichever broker serves it.

Usage: bench/cpu_split.py [--records 250000] [--group-records 3000000]
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def cpu_seconds(pid):
    """User plus system CPU of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measured(broker, run):
    """Runs `run()`; returns (its result, client CPU s, broker CPU s, wall s)."""
    b0, c0, t0 = cpu_seconds(broker.proc.pid), children_cpu(), time.time()
    result = run()
    return result, children_cpu() - c0, cpu_seconds(broker.proc.pid) - b0, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=250_000, help="1 KiB records produced with acks=all")
    ap.add_argument("--group-records", type=int, default=3_000_000, help="100 B records the group of 3 reads")
    ap.add_argument("--weir-bin", default=os.path.join(compare.ROOT, "target", "release", "weir"))
    args = ap.parse_args()
    cp = compare.classpath()
    rows = []
    for kind in ["kafka", "weir"]:
        compare.log(f"== {kind}")
        with compare.running(kind, cp, args.weir_bin) as (b, _):
            compare.create_topic(cp, b.bootstrap, "p1k", 3)
            r, client, broker, wall = measured(b, lambda: compare.produce_perf(cp, b.bootstrap, "p1k", args.records, 1024, "all"))
            rows.append((kind, "produce 1 KiB, acks=all", f"{r['mb_per_s']:.1f} MB/s", client, broker, wall))
            compare.create_topic(cp, b.bootstrap, "g", 12)
            compare.produce_perf(cp, b.bootstrap, "g", args.group_records, 100, "1")
            r, client, broker, wall = measured(b, lambda: compare.consume_group(cp, b.bootstrap, "g", args.group_records, 3))
            rows.append((kind, f"group of 3 reads {args.group_records:,} x 100 B", f"{r['records_per_s']:,.0f} records/s", client, broker, wall))
    print("| broker | workload | result | client CPU (s) | broker CPU (s) | wall (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, workload, result, client, broker, wall in rows:
        print(f"| {kind} | {workload} | {result} | {client:.1f} | {broker:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
