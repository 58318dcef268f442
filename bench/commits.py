#!/usr/bin/env python3
"""Offset commit rates only, side by side: Apache Kafka then weir, each driven by the Java
client (bench/java/BenchTool.java, 8 committers for 10 s, as in compare.py) and by
`weir bench commit` (8 and 32 committers for 5 s). Medians of --runs runs and weir/Kafka
ratios, as compare.py's markdown table.

Usage: bench/commits.py [--runs 3]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--weir-bin", default=os.path.join(compare.ROOT, "target", "release", "weir"))
    args = ap.parse_args()
    cp = compare.classpath()
    results = {"kafka": {}, "weir": {}}
    for kind in ["kafka", "weir"]:
        compare.log(f"== {kind}")
        with compare.running(kind, cp, args.weir_bin) as (b, _):
            compare.create_topic(cp, b.bootstrap, "reb", 200)
            for _ in range(args.runs):
                r = compare.bench_tool(cp, "commit", b.bootstrap, "reb", 10, 8)
                results[kind].setdefault("Java client, 8 committers (commits/s)", []).append(r["commits_per_s"])
                for committers in (8, 32):
                    r = compare.weir_bench(args.weir_bin, b.bootstrap, "commit", "--seconds", 5, "--committers", committers)
                    results[kind].setdefault(f"weir bench, {committers} committers (commits/s)", []).append(r["commits_per_s"])
    print(compare.ratio_table(results))


if __name__ == "__main__":
    main()
