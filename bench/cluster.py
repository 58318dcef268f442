#!/usr/bin/env python3
"""Cluster mode measured: `weir serve --cluster` brokers on one PostgreSQL and one SeaweedFS
bucket, with single-node weir and Apache Kafka as reference rows, in one run.

Sections (each reported on its own; one that fails is reported and the others still run):
  1. produce    Throughput and ack latency against the batch window (--cluster-batch-ms),
                for 1 and 3 brokers, acks=all; single-node weir and Kafka as references.
  2. cost       Object-store requests and PostgreSQL flush commits of every produce run,
                from the brokers' /metrics before and after: PUTs per MB written, PG
                commits per second.
  3. fetch      A topic filled by broker 1 alone, read by a group of 3 through broker 1
                (objects it just wrote), through broker 2 just started (empty cache: the
                store), through broker 2 again (its memory cache), and twice through broker
                3, whose memory cache is too small for the topic (the store, then its disk
                cache): records/s, GETs, cache hits.
  4. scale-out  The saturating produce of section 1 on 3 brokers, then 4, at the default
                window: as they are (sharing this machine's cores), and with each broker held
                to a fixed share of a core by a cgroup, standing in for one machine per
                broker (--broker-cpu; needs root and the cgroup v1 cpu controller).

Load comes from `weir bench produce` and `weir bench consume` (-o json): one process,
bootstrapped at broker 1, writing each partition at its leader as clients do.

Usage: bench/cluster.py WEIR_BIN [--quick] [--out bench/last-run-cluster.md]
Needs PostgreSQL and SeaweedFS as tests/cluster/install.sh installs them, and Apache Kafka's
jars as bench/compare.py resolves them.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import compare  # noqa: E402
import services  # noqa: E402
from brokers import Brokers  # noqa: E402

log = compare.log
# Every failure of a run or section, so the brokers' logs are kept for a look.
failures = []

RECORD_BYTES = 1024
PARTITIONS = 6
# The scale-out section's topics: 12 partitions are led 4 + 4 + 4 by 3 brokers and 3 + 3 + 3
# + 3 by 4, so no broker carries more than its share (6 would be led 2 + 2 + 1 + 1).
SCALE_PARTITIONS = 12
ACKS = -1
BATCH_WINDOWS_MS = (10, 50, 100, 250)
# weir serve's --cluster-batch-ms and --cluster-lease-ms defaults.
DEFAULT_BATCH_MS = 20
LEASE_MS = 10000
CONSUME_MEMBERS = 3
# How long a cluster may take until every broker's Metadata names all of them.
MEMBERSHIP_TIMEOUT_S = 30
BENCH_TIMEOUT_S = 600

# Records per produce run (all processes of a run together) and in the fetch section's
# topic. Sized on this 2-core machine, where a cluster takes 20,000-60,000 x 1 KiB records/s
# (by window and broker count) and single-node weir ~190,000: a full cluster run lasts
# 8-25 s, a quick one a third of that. Every run's records stay in the bucket until the end
# (~5 GB in a full run). The fetch topic stays below a broker's memory cache (256 MiB).
RECORDS_FULL, RECORDS_QUICK = 480_000, 180_000
FILL_RECORDS_FULL, FILL_RECORDS_QUICK = 200_000, 50_000

# The cluster's cost counters (each a counter, summed over its labels). A binary without
# them reports "n/a".
PUTS = "weir_cluster_object_puts_total"
PUT_BYTES = "weir_cluster_object_put_bytes_total"
GETS = "weir_cluster_object_gets_total"
GET_BYTES = "weir_cluster_object_get_bytes_total"
CACHE_HITS = "weir_cluster_cache_hits_total"
CACHE_MISSES = "weir_cluster_cache_misses_total"
DISK_HITS = "weir_cluster_disk_cache_hits_total"
# Broker 3's memory cache in the fetch section: too small to hold the topic, so its second
# read comes from its disk cache.
SMALL_MEMORY_CACHE = 1 << 20
FLUSH_COMMITS = "weir_cluster_flush_commits_total"
FAMILIES = (PUTS, PUT_BYTES, GETS, GET_BYTES, CACHE_HITS, CACHE_MISSES, DISK_HITS, FLUSH_COMMITS)


# ---------------------------------------------------------------------------------------
# Metrics


def scrape(brokers, node_id):
    """{family: sum of its samples, or None when the broker does not export it}."""
    sums = dict.fromkeys(FAMILIES)
    for line in brokers.metrics(node_id).splitlines():
        if line.startswith("#") or not line.startswith("weir_cluster_"):
            continue
        name_and_labels, _, value = line.rpartition(" ")
        name = name_and_labels.split("{", 1)[0]
        family = name if name in sums else name + "_total"
        if family in sums:
            sums[family] = (sums[family] or 0.0) + float(value)
    return sums


def scrape_all(brokers, node_ids):
    return {n: scrape(brokers, n) for n in node_ids}


def delta(before, after, family, node_ids=None):
    """The growth of `family` over `node_ids` (all scraped by default); None if any broker
    lacks it."""
    total = 0.0
    for n in node_ids or after:
        a, b = after[n][family], before.get(n, {}).get(family)
        if a is None or b is None:
            return None
        total += a - b
    return total


# ---------------------------------------------------------------------------------------
# Load


def produce_args(args, topic, records, partitions=PARTITIONS):
    return ["produce", "-o", "json", "--topic", topic, "--records", records, "--size", RECORD_BYTES,
            "--partitions", partitions, "--acks", ACKS, "--producers", args.producers,
            "--in-flight", args.in_flight, "--batch-bytes", args.batch_bytes]


def run_bench(weir_bin, bootstrap, bench_args):
    """Runs one `weir bench` bootstrapped at `bootstrap`; its JSON line."""
    cmd = [weir_bin, "bench", "--bootstrap", bootstrap] + [str(a) for a in bench_args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"weir bench did not finish within {BENCH_TIMEOUT_S}s") from None
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"weir bench exited with {p.returncode}: {p.stderr.strip()[-300:]}")
    return json.loads(lines[-1])


def produce(args, addresses, topic, records, partitions=PARTITIONS):
    """Produces `records` with one `weir bench produce` bootstrapped at the first of
    `addresses`, which writes each partition at its leader."""
    create_topic(",".join(addresses), topic, partitions)
    r = run_bench(args.weir_bin, addresses[0], produce_args(args, topic, records, partitions))
    r["secs"] = r["records"] / r["records_per_s"]
    return r


def create_topic(bootstrap, topic, partitions=PARTITIONS):
    """Creates `topic` with the admin client before the timed run, so that its creation is
    not part of what `weir bench produce` measures."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=30)[topic].result(60)


def consume(args, address, topic):
    r = run_bench(args.weir_bin, address, ["consume", "-o", "json", "--topic", topic, "--members", CONSUME_MEMBERS])
    r["secs"] = r["records"] / r["records_per_s"] if r["records_per_s"] else float("nan")
    return r


# ---------------------------------------------------------------------------------------
# The cluster


def live_brokers(address):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    return sorted(admin.list_topics(timeout=10).brokers)


def restart_cluster(brokers, node_ids, batch_ms):
    """Stops every running broker and starts `node_ids` with the batch window `batch_ms`."""
    for n in brokers.running():
        brokers.stop(n)
    brokers.batch_ms = batch_ms
    for n in node_ids:
        brokers.start(n)
    wait_membership(brokers, node_ids)


def wait_membership(brokers, node_ids):
    """Until every broker's Metadata names exactly `node_ids`."""
    deadline = time.time() + MEMBERSHIP_TIMEOUT_S
    while True:
        try:
            if all(live_brokers(brokers.address(n)) == sorted(node_ids) for n in node_ids):
                return
        except Exception:  # A broker that just started may not answer yet.
            pass
        if time.time() > deadline:
            raise RuntimeError(f"brokers {node_ids} did not all see each other within {MEMBERSHIP_TIMEOUT_S}s")
        time.sleep(0.2)


class Costs:
    """Table 2: what each produce run cost in object-store requests and PostgreSQL commits."""

    def __init__(self):
        self.rows = []

    def add(self, label, before, after, result):
        mb_written = result["records"] * RECORD_BYTES / 1e6
        puts, put_bytes = delta(before, after, PUTS), delta(before, after, PUT_BYTES)
        gets, commits = delta(before, after, GETS), delta(before, after, FLUSH_COMMITS)
        self.rows.append([label, f"{mb_written:,.1f}", num(puts), num(put_bytes and put_bytes / 1e6, 1),
                          num(puts and puts / mb_written, 2), num(gets), num(commits),
                          num(commits and commits / result["secs"], 1)])

    def table(self):
        head = ["produce run", "MB written", "PUTs", "MB PUT", "PUTs per MB written", "GETs",
                "PG flush commits", "PG commits/s"]
        return md_table(head, self.rows, "l" + "r" * 7)


# ---------------------------------------------------------------------------------------
# Sections


def section_produce(args, brokers, costs, cp):
    runs = []  # (label, window, result or the error), in the table's order
    reference = {}
    for kind in ("kafka", "weir"):
        label = {"kafka": "Apache Kafka, single node", "weir": "weir, single node"}[kind]
        log(f"produce: {label}")
        try:
            with compare.running(kind, cp, args.weir_bin) as (b, _):
                r = produce(args, [b.bootstrap], f"ref-{uuid.uuid4().hex[:6]}", args.records)
            reference[kind] = r
            log(f"  {r['records_per_s']:,.0f} records/s, p99 {r['p99_ms']:.0f} ms")
            runs.append((label, "-", r))
        except Exception as e:
            failures.append(e)
            log(f"  failed: {e}")
            runs.append((label, "-", e))
    for window_ms in BATCH_WINDOWS_MS:
        for count in (1, 3):
            label = f"cluster, {count} broker{'s' if count > 1 else ''}"
            log(f"produce: {label}, batch window {window_ms} ms")
            try:
                nodes = list(range(1, count + 1))
                if count == 1:
                    restart_cluster(brokers, nodes, window_ms)
                else:
                    for n in nodes[1:]:
                        brokers.start(n)
                    wait_membership(brokers, nodes)
                before = scrape_all(brokers, nodes)
                r = produce(args, [brokers.address(n) for n in nodes], f"w{window_ms}-b{count}-{uuid.uuid4().hex[:6]}",
                            args.records)
                after = scrape_all(brokers, nodes)
                costs.add(f"{label}, window {window_ms} ms", before, after, r)
                log(f"  {r['records_per_s']:,.0f} records/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms")
                runs.append((label, window_ms, r))
            except Exception as e:
                failures.append(e)
                log(f"  failed: {e}")
                runs.append((label, window_ms, e))
    rows = [produce_row(label, window, r, reference) if isinstance(r, dict)
            else [label, str(window), f"failed: {one_line(r)}", "", "", "", "", ""] for label, window, r in runs]
    head = ["setup", "batch window (ms)", "records/s", "MB/s", "p50 ack (ms)", "p99 ack (ms)",
            "records/s ÷ single-node weir", "records/s ÷ Kafka"]
    return md_table(head, rows, "lrrrrrrr")


def produce_row(label, window, r, reference):
    def ratio(kind):
        ref = reference.get(kind)
        return f"{r['records_per_s'] / ref['records_per_s']:.2f}" if ref else "n/a"
    return [label, str(window), f"{r['records_per_s']:,.0f}", f"{r['mb_per_s']:,.1f}", f"{r['p50_ms']:,.1f}",
            f"{r['p99_ms']:,.1f}", ratio("weir"), ratio("kafka")]


def section_fetch(args, brokers, costs):
    log(f"fetch: filling a topic with {args.fill_records:,} records through broker 1 alone")
    restart_cluster(brokers, [1], DEFAULT_BATCH_MS)
    topic = f"fetch-{uuid.uuid4().hex[:6]}"
    before = scrape_all(brokers, [1])
    r = produce(args, [brokers.address(1)], topic, args.fill_records)
    costs.add(f"fetch section's fill, 1 broker, window {DEFAULT_BATCH_MS} ms", before, scrape_all(brokers, [1]), r)
    log(f"  {r['records_per_s']:,.0f} records/s")
    nodes = [1, 2, 3]
    brokers.start(2)
    extra = brokers.extra_args
    brokers.extra_args = extra + ["--cluster-memory-cache-bytes", str(SMALL_MEMORY_CACHE)]
    try:
        brokers.start(3)
    finally:
        brokers.extra_args = extra
    wait_membership(brokers, nodes)
    rows = []
    runs = (("through broker 1, which wrote every object", 1),
            ("through broker 2, just started (empty cache)", 2),
            ("through broker 2 again (memory cache)", 2),
            ("through broker 3, just started, 1 MiB memory cache", 3),
            ("through broker 3 again (disk cache)", 3))
    for label, node in runs:
        log(f"fetch: a group of {CONSUME_MEMBERS} {label}")
        try:
            before = scrape_all(brokers, [node])
            c = consume(args, brokers.address(node), topic)
            after = scrape_all(brokers, [node])
            mb_read = c["records"] * RECORD_BYTES / 1e6
            gets = delta(before, after, GETS)
            get_bytes = delta(before, after, GET_BYTES)
            log(f"  {c['records_per_s']:,.0f} records/s, GETs {num(gets)}")
            rows.append([label, f"{c['records']:,}", f"{c['records_per_s']:,.0f}", f"{c['mb_per_s']:,.1f}", num(gets),
                         num(get_bytes and get_bytes / 1e6, 1), num(gets and gets / mb_read, 2),
                         num(delta(before, after, CACHE_HITS)), num(delta(before, after, CACHE_MISSES)),
                         num(delta(before, after, DISK_HITS))])
        except Exception as e:
            failures.append(e)
            log(f"  failed: {e}")
            rows.append([label, f"failed: {one_line(e)}", "", "", "", "", "", "", "", ""])
    head = ["group of 3 reads the topic", "records", "records/s", "MB/s (wire)", "GETs", "MB got", "GETs per MB read",
            "memory hits", "memory misses", "disk hits"]
    return md_table(head, rows, "lrrrrrrrrr")


CGROUP_CPU = "/sys/fs/cgroup/cpu"


class CpuLimits:
    """One cgroup (v1 cpu controller) per broker, holding it to `cpus` of a core."""

    def __init__(self, cpus):
        self.cpus = cpus
        self.dirs = []

    def apply(self, brokers, node_ids):
        period_us = 100_000
        for n in node_ids:
            path = os.path.join(CGROUP_CPU, f"weir-bench-{os.getpid()}-{n}")
            os.makedirs(path, exist_ok=True)
            if path not in self.dirs:
                self.dirs.append(path)
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write(str(period_us))
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(int(period_us * self.cpus)))
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(brokers.procs[n].pid))

    def close(self):
        for path in self.dirs:
            try:
                os.rmdir(path)
            except OSError:
                pass


def section_scale_out(args, brokers, costs):
    saturating = f"{args.producers} producers, {args.in_flight} in flight per leader"
    loads = [(f"{saturating}; brokers share the machine", None)]
    if os.access(os.path.join(CGROUP_CPU, "cgroup.procs"), os.W_OK):
        loads.append((f"{saturating}; each broker held to {args.broker_cpu} of a core", CpuLimits(args.broker_cpu)))
    else:
        log(f"scale-out: no writable {CGROUP_CPU}: the run with brokers held to a share of a core is left out")
    rows = []
    for name, limits in loads:
        for count in (3, 4):
            nodes = list(range(1, count + 1))
            log(f"scale-out: {count} brokers, {name}")
            try:
                restart_cluster(brokers, nodes, DEFAULT_BATCH_MS)
                if limits:
                    limits.apply(brokers, nodes)
                before = scrape_all(brokers, nodes)
                r = produce(args, [brokers.address(n) for n in nodes], f"scale{count}-{uuid.uuid4().hex[:6]}",
                            args.records, SCALE_PARTITIONS)
                costs.add(f"scale-out, {count} brokers, {name}", before, scrape_all(brokers, nodes), r)
                log(f"  {r['records_per_s']:,.0f} records/s")
                rows.append((name, count, r))
            except Exception as e:
                failures.append(e)
                log(f"  failed: {e}")
                rows.append((name, count, e))
        if limits:
            for n in brokers.running():
                brokers.stop(n)
            limits.close()
    out = []
    for name, count, r in rows:
        if not isinstance(r, dict):
            out.append([name, str(count), f"failed: {one_line(r)}", "", "", "", ""])
            continue
        three = next((x for n, c, x in rows if n == name and c == 3 and isinstance(x, dict)), None)
        ratio = f"{r['records_per_s'] / three['records_per_s']:.2f}" if three else "n/a"
        out.append([name, str(count), f"{r['records_per_s']:,.0f}", f"{r['mb_per_s']:,.1f}", f"{r['p50_ms']:,.1f}",
                    f"{r['p99_ms']:,.1f}", ratio])
    head = ["load", "brokers", "records/s", "MB/s", "p50 ack (ms)", "p99 ack (ms)", "÷ 3 brokers"]
    return md_table(head, out, "lrrrrrr")


# ---------------------------------------------------------------------------------------
# The report


def num(value, digits=0):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def one_line(error):
    return " ".join(str(error).split())[:300]


def md_table(head, rows, align):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def shown_command(argv):
    """The command as run, with the weir binary named relative to its checkout."""
    words = ["python3", "bench/cluster.py"]
    for word in argv[1:]:
        if word.endswith("target/release/weir") or word.endswith("target/debug/weir"):
            word = word[word.rindex("target/"):]
        words.append(word)
    return " ".join(words)


def machine_note():
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU ({cpu or platform.machine()}), {mem_gib:.0f} GiB RAM, Linux {platform.release()}"


def header(args, started):
    version = subprocess.run([args.weir_bin, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "bench/cluster.py"], capture_output=True,
                      text=True).stdout.strip():
        commit += " with local changes"
    built = datetime.datetime.fromtimestamp(os.path.getmtime(args.weir_bin), datetime.timezone.utc)
    pg_version = subprocess.run([os.path.join(services.postgres_bin_dir(), "postgres"), "--version"],
                                capture_output=True, text=True).stdout.split()
    pg_version = f"PostgreSQL {pg_version[2]}" if len(pg_version) > 2 else "PostgreSQL"
    bucket_note = ("one SeaweedFS server (`weed mini`, local disk)" if args.bucket == "seaweedfs" else
                   "a local directory (`file://`; the object_store crate writes each object to a file and renames "
                   "it, without fsync), which leaves out an S3 server's cost")
    driven = ("one `weir bench produce` process, bootstrapped at broker 1, which writes each partition at its "
              "leader (its producers each hold a connection to every leader, with that many requests in flight "
              "on each)")
    return "\n".join([
        "# weir cluster mode: produce, object-store cost, fetch, scale-out",
        "",
        f"    {shown_command(sys.argv)}",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC. {version or 'weir'}, the binary built {built:%Y-%m-%d %H:%M} UTC; "
        f"harness at commit {commit}.",
        f"- Machine: {machine_note()}. PostgreSQL, {bucket_note}, every broker, Apache Kafka (when it runs) "
        f"and the load clients all share this one machine and its {os.cpu_count()} cores: absolute figures "
        "are low, and the ratios within this run are what counts.",
        f"- Cluster: `weir serve --cluster` brokers, lease {LEASE_MS} ms (`--cluster-lease-ms`), batch window "
        f"`--cluster-batch-ms` as each table says (default {DEFAULT_BATCH_MS} ms), "
        "`--group-initial-rebalance-delay-ms 0`; restarted between windows, each run on fresh topics. "
        f"One throwaway {pg_version} with fsync on (tests/cluster/services.py); the bucket: {bucket_note}.",
        f"- Workload: `weir bench produce`, {RECORD_BYTES} B records, {PARTITIONS} partitions, acks=all, "
        f"{args.producers} producers per process with {args.in_flight} requests in flight each, "
        f"{args.batch_bytes} bytes per partition batch, {args.records:,} records per run; {driven}.",
        "- References: single-node `weir serve` (defaults: `--fsync always`) and Apache Kafka 4.4.0 in KRaft "
        "combined mode (bench/compare.py starts both), same workload, one process.",
        ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weir_bin")
    ap.add_argument("--quick", action="store_true", help=f"{RECORDS_QUICK:,} records per run instead of "
                    f"{RECORDS_FULL:,}, and a {FILL_RECORDS_QUICK:,}-record fetch topic")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "last-run-cluster.md"))
    ap.add_argument("--producers", type=int, default=4, help="producers (connections) per bench process")
    ap.add_argument("--in-flight", type=int, default=5)
    ap.add_argument("--batch-bytes", type=int, default=65536)
    ap.add_argument("--sections", default="produce,fetch,scale-out")
    ap.add_argument("--bucket", choices=("seaweedfs", "directory"), default="seaweedfs",
                    help="the bucket in a SeaweedFS server on this machine, or in a directory (file://)")
    ap.add_argument("--broker-cpu", type=float, default=0.15,
                    help="the share of a core each broker is held to in the scale-out section's second pair of runs")
    args = ap.parse_args()
    args.weir_bin = os.path.abspath(args.weir_bin)
    args.records = RECORDS_QUICK if args.quick else RECORDS_FULL
    args.fill_records = FILL_RECORDS_QUICK if args.quick else FILL_RECORDS_FULL
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.time()

    cp = compare.classpath()
    workdir = tempfile.mkdtemp(prefix="weir-bench-cluster-")
    # A private copy, so that a rebuild during the run does not mix two binaries.
    shutil.copy2(args.weir_bin, os.path.join(workdir, "weir"))
    args.weir_bin = os.path.join(workdir, "weir")
    log(f"starting PostgreSQL{' and SeaweedFS' if args.bucket == 'seaweedfs' else ''}")
    pg = services.Postgres(durable=True)
    if args.bucket == "seaweedfs":
        s3 = services.Seaweed()
        bucket_url, env = s3.url(f"bench-{uuid.uuid4().hex[:8]}"), s3.env()
    else:
        s3 = None
        os.makedirs(os.path.join(workdir, "bucket"))
        bucket_url, env = f"file://{workdir}/bucket", {}
    brokers = Brokers(args.weir_bin, pg.url(), bucket_url, workdir, env=env,
                      lease_ms=LEASE_MS, batch_ms=DEFAULT_BATCH_MS,
                      extra_args=["--group-initial-rebalance-delay-ms", "0"])
    costs = Costs()
    titles = {
        "produce": "## 1. Produce throughput and ack latency against the batch window",
        "fetch": "## 3. Fetch from a broker's cache and from the store",
        "scale-out": f"## 4. Scale-out: 3 brokers against 4 (batch window {DEFAULT_BATCH_MS} ms)",
    }
    notes = {
        "produce": ("Cluster rows with 3 brokers: one process, writing each partition at its leader. "
            "The ÷ columns divide by the single-node rows of this run.\n\n"
            f"The load is a closed loop: each producer keeps {args.in_flight} requests outstanding"
            f" at each leader ({args.producers} producers), "
            "a broker gathers what arrived during a window into one object, and a request is answered after its "
            "object's PUT and PostgreSQL commit. Throughput is therefore about the data in flight over "
            "(window + PUT + commit): a longer window lowers it unless `--in-flight` is raised, and the "
            "latencies are those of a saturated pipeline. A request carries 64 records of each partition it "
            "writes, so a run has only a few thousand requests and p99 sits close to the maximum."),
        "fetch": (f"The topic ({args.fill_records:,} x {RECORD_BYTES} B, {PARTITIONS} partitions) was written "
                  f"by broker 1 alone, then brokers 2 and 3 started; `weir bench consume --members {CONSUME_MEMBERS}` "
                  "fetches every partition from the broker it is bootstrapped at, so GETs and cache figures are that "
                  "broker's. records/s counts from the start, group join included. Broker 3 runs with "
                  f"`--cluster-memory-cache-bytes {SMALL_MEMORY_CACHE}`, far below the topic, so its second read "
                  "comes from its disk cache (`--cluster-disk-cache-bytes`, 1 GiB by default)."),
        "scale-out": (f"One process writing each partition at its leader, the load of section 1 on topics of "
                      f"{SCALE_PARTITIONS} partitions (an equal share for each of 3 or 4 brokers). As they are, "
                      "the brokers share this machine's 2 cores with PostgreSQL, the bucket and the client: a "
                      "fourth broker adds a process, not cores, so it cannot gain there. In the second pair of "
                      f"runs each broker is held to {args.broker_cpu} of a core by a cgroup, as if each had a "
                      "small machine of its own: then the brokers are what limits throughput, and a fourth adds "
                      "capacity, as a fourth machine would."),
    }
    sections = {"produce": lambda: section_produce(args, brokers, costs, cp),
                "fetch": lambda: section_fetch(args, brokers, costs),
                "scale-out": lambda: section_scale_out(args, brokers, costs)}
    out = {}
    try:
        for name in args.sections.split(","):
            section_t0 = time.time()
            try:
                out[name] = sections[name]()
            except Exception as e:
                failures.append(e)
                log(f"{name} failed: {e}")
                traceback.print_exc()
                out[name] = f"**Failed:** {one_line(e)} (broker logs in {workdir})"
            log(f"{name}: {time.time() - section_t0:.0f} s")
    finally:
        brokers.close()
        if s3:
            s3.close()
        pg.close()

    parts = [header(args, started)]
    for name in ("produce", "cost", "fetch", "scale-out"):
        if name == "cost":
            if not costs.rows:
                continue
            parts += ["## 2. Object-store requests and PostgreSQL commits per produce run", "",
                      "From the brokers' /metrics, before and after each run, summed over the brokers that ran "
                      "(n/a: the binary exports no such counter). MB written counts the records' values; PG flush "
                      "commits are the PostgreSQL transactions that committed a flush. MB PUT / PUTs is the mean object "
                      "size; with the closed loop of section 1 a flush holds what the producers had in flight.", "",
                      costs.table(), ""]
            continue
        if name not in out:
            continue
        parts += [titles[name], "", notes[name], "", out[name], ""]
    parts.append(f"Wall time: {(time.time() - t0) / 60:.1f} min.")
    report = "\n".join(parts) + "\n"
    with open(args.out, "w") as f:
        f.write(report)
    print(report)
    if failures:
        log(f"{len(failures)} failure(s); the brokers' logs are in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
