#!/usr/bin/env python3
"""Consumer groups side by side: Apache Kafka then weir, each driven by `weir bench` (a lean
client that speaks only the Kafka protocol).

For the classic and the consumer (KIP-848) protocol and groups of 10, 100 and 1,000 members
(`weir bench rebalance`, a topic of --partitions-per-member partitions per member):

- all assigned: from the first join until every member owns its partitions, all at one
  epoch (classic: generation), no partition owned twice;
- after a leave: from one member leaving (LeaveGroup; epoch -1) until the others are
  reconciled again;
- after a crash: from one member going silent until the others are reconciled again,
  which waits for its session to time out.

Then heartbeats/s: a stable consumer-protocol group of --hb-members members heartbeating as
fast as the coordinator answers, pipelined over --hb-connections connections
(`weir bench heartbeats`).

Each run starts a fresh broker of each kind on a free loopback port in a temp directory,
Kafka first, with the same group settings on both (SETTINGS below). The table shows the
median of --runs runs and the weir/Kafka ratio; a workload that failed in a run is left out
of that run's figures and counted in the table.

Usage: bench/groups.py [--runs 3] [--weir-bin target/release/weir] [--out bench/last-run-groups.md]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

SIZES = (10, 100, 1000)
PROTOCOLS = ("classic", "consumer")

# The group settings both brokers run with.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 500
REBALANCE_TIMEOUT_MS = 30000
GROUP_MAX_SIZE = 2000

# compare.Broker already sets group.initial.rebalance.delay.ms to 0 on both.
KAFKA_PROPS = {
    "group.max.size": GROUP_MAX_SIZE,
    "group.min.session.timeout.ms": SESSION_TIMEOUT_MS,
    "group.consumer.max.size": GROUP_MAX_SIZE,
    "group.consumer.session.timeout.ms": SESSION_TIMEOUT_MS,
    "group.consumer.min.session.timeout.ms": SESSION_TIMEOUT_MS,
    "group.consumer.heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
    "group.consumer.min.heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
    # Kafka 4.4 recomputes a consumer group's target assignment at most once per
    # group.consumer.assignment.interval.ms (default 1000); weir recomputes it on every
    # group epoch bump, which is what 0 makes Kafka do. --kafka-assignment-interval-ms
    # sets another value.
    "group.consumer.assignment.interval.ms": 0,
}
WEIR_ARGS = [
    "--group-max-size", GROUP_MAX_SIZE,
    "--group-min-session-timeout-ms", SESSION_TIMEOUT_MS,
    "--group-consumer-max-size", GROUP_MAX_SIZE,
    "--group-consumer-session-timeout-ms", SESSION_TIMEOUT_MS,
    "--group-consumer-min-session-timeout-ms", SESSION_TIMEOUT_MS,
    "--group-consumer-heartbeat-interval-ms", HEARTBEAT_INTERVAL_MS,
    "--group-consumer-min-heartbeat-interval-ms", HEARTBEAT_INTERVAL_MS,
]


def rebalance_rows(protocol, members):
    who = f"{protocol} protocol, {members:,} members"
    return (f"{who}: all assigned (ms)", f"{who}: reassigned after a leave (ms)",
            f"{who}: reassigned after a crash (ms)")


def heartbeat_row(members, connections):
    return f"consumer protocol, {members:,} members on {connections} connections: heartbeats answered (heartbeats/s)"


def table(results, names, runs, brokers):
    """Markdown rows: medians of each workload on both brokers and weir/Kafka; a workload
    that failed in some runs says in how many it succeeded."""
    lines = ["| workload | Apache Kafka | weir | weir/Kafka |", "|---|---:|---:|---:|"]

    def cell(kind, name):
        values = results[kind].get(name, [])
        if kind not in brokers:
            return "not run", None
        if not values:
            return "failed", None
        m = statistics.median(values)
        note = "" if len(values) == runs else f" ({len(values)}/{runs} runs)"
        return f"{m:,.1f}{note}", m

    for name in names:
        (k_text, k), (w_text, w) = cell("kafka", name), cell("weir", name)
        ratio = f"{w / k:.2f}" if k and w is not None else "-"
        better = "lower is better" if name.endswith("(ms)") else "higher is better"
        lines.append(f"| {name} ({better}) | {k_text} | {w_text} | {ratio} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="group sizes, comma-separated")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--partitions-per-member", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8, help="connections the consumer-protocol members share")
    ap.add_argument("--hb-members", type=int, default=1000)
    ap.add_argument("--hb-connections", type=int, default=4)
    ap.add_argument("--hb-in-flight", type=int, default=64, help="heartbeats in flight per connection")
    ap.add_argument("--hb-seconds", type=int, default=10)
    ap.add_argument("--converge-timeout-ms", type=int, default=60000,
                    help="how long each phase of a rebalance run may take to reconcile")
    ap.add_argument("--weir-bin", default=os.path.join(compare.ROOT, "target", "release", "weir"))
    ap.add_argument("--out", default=os.path.join(compare.ROOT, "bench", "last-run-groups.md"))
    ap.add_argument("--logs", default=None, help="a directory to keep each broker's log in")
    ap.add_argument("--kafka-assignment-interval-ms", type=int, default=0,
                    help="Kafka's group.consumer.assignment.interval.ms (its own default is 1000)")
    ap.add_argument("--brokers", default="kafka,weir", help="which brokers to run, in order")
    args = ap.parse_args()
    KAFKA_PROPS["group.consumer.assignment.interval.ms"] = args.kafka_assignment_interval_ms
    sizes = [int(s) for s in args.sizes.split(",")]
    brokers = args.brokers.split(",")
    protocols = args.protocols.split(",")
    cp = compare.classpath()
    names = [n for p in protocols for m in sizes for n in rebalance_rows(p, m)]
    hb_name = heartbeat_row(args.hb_members, args.hb_connections)
    names.append(hb_name)
    results = {"kafka": {}, "weir": {}}
    # What the runs saw besides the figures: members fenced, partitions owned twice, failures.
    notes = {"kafka": [], "weir": []}

    def add(kind, name, value):
        results[kind].setdefault(name, []).append(value)

    started = time.time()
    for run in range(args.runs):
        for kind in brokers:
            compare.log(f"run {run + 1}/{args.runs}: {kind} ({time.time() - started:.0f} s so far)")
            with compare.running(kind, cp, args.weir_bin, KAFKA_PROPS, WEIR_ARGS) as (b, _):
                if args.logs:
                    os.makedirs(args.logs, exist_ok=True)
                    b.keep_log = os.path.join(args.logs, f"{kind}-run{run + 1}.log")
                # weir creates __consumer_offsets on the first group write, Kafka on the first
                # FindCoordinator, which `weir bench` sends before its clock starts: one
                # commit first, so that neither broker's first workload pays for the topic.
                try:
                    compare.weir_bench(args.weir_bin, b.bootstrap, "commit", "--seconds", 1, "--committers", 1,
                                       timeout=120)
                except Exception as e:  # noqa: BLE001 - Kafka may refuse a commit before it has the topic
                    compare.log(f"  warm-up commit: {e}")
                for protocol in protocols:
                    for members in sizes:
                        join, leave, crash = rebalance_rows(protocol, members)
                        try:
                            r = compare.weir_bench(
                                args.weir_bin, b.bootstrap, "rebalance", "--protocol", protocol,
                                "--topic", f"groups{members}", "--members", members,
                                "--partitions", members * args.partitions_per_member,
                                "--session-timeout-ms", SESSION_TIMEOUT_MS,
                                "--heartbeat-interval-ms", HEARTBEAT_INTERVAL_MS,
                                "--rebalance-timeout-ms", REBALANCE_TIMEOUT_MS,
                                "--connections", args.connections, "--assignor", "uniform",
                                "--converge-timeout-ms", args.converge_timeout_ms, timeout=600)
                        except Exception as e:  # noqa: BLE001 - one failed workload must not end the run
                            compare.log(f"  {protocol}, {members} members: FAILED: {e}")
                            notes[kind].append(f"run {run + 1}, {protocol} protocol, {members} members: {e}")
                            continue
                        compare.log(f"  {protocol}, {members} members: all assigned {r['all_assigned_ms']:.0f} ms, "
                                    f"after a leave {r['after_leave_ms']:.0f} ms, after a crash {r['after_crash_ms']:.0f} ms, "
                                    f"epochs {r['epochs']}, fenced {r['fenced']}, owned twice {r['owned_twice_seen']}")
                        add(kind, join, r["all_assigned_ms"])
                        add(kind, leave, r["after_leave_ms"])
                        add(kind, crash, r["after_crash_ms"])
                        if r["fenced"] or r["owned_twice_seen"]:
                            notes[kind].append(f"run {run + 1}, {protocol} protocol, {members} members: {r['fenced']} "
                                               f"members fenced, {r['owned_twice_seen']} looks with a partition owned twice")
                try:
                    r = compare.weir_bench(
                        args.weir_bin, b.bootstrap, "heartbeats", "--topic", f"groups{args.hb_members}",
                        "--members", args.hb_members, "--partitions", args.hb_members * args.partitions_per_member,
                        "--connections", args.hb_connections, "--in-flight", args.hb_in_flight,
                        "--seconds", args.hb_seconds, "--rebalance-timeout-ms", REBALANCE_TIMEOUT_MS,
                        "--assignor", "uniform", "--converge-timeout-ms", args.converge_timeout_ms, timeout=600)
                    compare.log(f"  heartbeats: {r['heartbeats_per_s']:.0f}/s, errors {r['errors']}, fenced {r['fenced']}, "
                                f"epoch {r['epoch_before']} -> {r['epoch_after']}")
                    add(kind, hb_name, r["heartbeats_per_s"])
                    if r["errors"] or r["fenced"]:
                        notes[kind].append(f"run {run + 1}, heartbeats: {r['errors']} answers with an error, "
                                           f"{r['fenced']} members fenced")
                except Exception as e:  # noqa: BLE001
                    compare.log(f"  heartbeats: FAILED: {e}")
                    notes[kind].append(f"run {run + 1}, heartbeats: {e}")
    out = [table(results, names, args.runs, brokers), "", "Each run's figures, Kafka then weir:", ""]
    for name in names:
        per_run = "; ".join(
            f"{kind}: " + ", ".join(f"{v:,.0f}" for v in results[kind].get(name, [])) for kind in brokers)
        out.append(f"- {name}: {per_run}")
    out.append("")
    for kind in ("kafka", "weir"):
        for n in notes[kind]:
            out.append(f"- {'Apache Kafka' if kind == 'kafka' else 'weir'}: {n}")
    text = "\n".join(out).rstrip() + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    compare.log(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
