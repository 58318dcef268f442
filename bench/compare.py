#!/usr/bin/env python3
"""Side-by-side benchmarks: Apache Kafka and weir on this machine, in one run.

Both brokers are driven by the same load tools (Kafka's own ProducerPerformance and
ConsumerPerformance), on loopback, one broker at a time. Each workload runs --runs times
per broker; the table shows medians and the weir/Kafka ratio. Also measured: start-up
time to the first answered request, resident memory idle, with 1,000 partitions, and
right after the produce workloads.

Usage: bench/compare.py [--runs 3] [--records 2000000] [--out BENCHMARKS-run.md]
"""
import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", ".work")
KAFKA_HEAP = "-Xmx1g"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def classpath():
    """Apache Kafka's jars, the same the compatibility harness uses (tests/compat/kafka)."""
    os.makedirs(CACHE, exist_ok=True)
    return subprocess.run([os.path.join(ROOT, "tests", "compat", "kafka", "classpath.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout_s=90):
    start = time.time()
    while time.time() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"port {port} did not open within {timeout_s}s")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Broker:
    def __init__(self, kind, cp, weir_bin, kafka_props=None, weir_args=None):
        """`kafka_props` (a dict) and `weir_args` (a list of flags) add broker settings."""
        self.kind, self.cp, self.weir_bin = kind, cp, weir_bin
        self.kafka_props, self.weir_args = kafka_props or {}, weir_args or []
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        # Where stop() copies the broker's log before it removes the directory, if set.
        self.keep_log = None

    def start(self):
        """Starts the broker; returns seconds until it answered a Metadata request."""
        logf = open(os.path.join(self.dir, "broker.log"), "ab")
        if self.kind == "weir":
            cmd = [self.weir_bin, "serve", "--listen", self.bootstrap, "--data-dir", os.path.join(self.dir, "data"),
                   "--group-initial-rebalance-delay-ms", "0", "--log-level", "warn",
                   "--http-listen", "off"] + [str(a) for a in self.weir_args]
        else:
            ctrl = free_port()
            props = os.path.join(self.dir, "server.properties")
            with open(props, "w") as f:
                f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{ctrl}
listeners=PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{ctrl}
advertised.listeners=PLAINTEXT://{self.bootstrap}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={self.dir}/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
""")
                for k, v in self.kafka_props.items():
                    f.write(f"{k}={v}\n")
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            subprocess.run(["java", "-cp", self.cp, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", props,
                            "--standalone"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cmd = ["java", KAFKA_HEAP, "-Xms1g", "-XX:+UseG1GC", "-cp", self.cp, "kafka.Kafka", props]
        t0 = time.time()
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        # The first served request: a topic listing through Kafka's own admin tool would
        # include JVM start-up of the tool, so time a raw Metadata round trip instead.
        while True:
            try:
                metadata_round_trip(self.port)
                break
            except OSError:
                time.sleep(0.005)
        return time.time() - t0

    def rss_mib(self):
        return rss_kib(self.proc.pid) / 1024

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.keep_log:
            shutil.copyfile(os.path.join(self.dir, "broker.log"), self.keep_log)
        shutil.rmtree(self.dir, ignore_errors=True)
        # Let the disk settle so the next broker does not pay for this one's writeback.
        os.sync()
        time.sleep(2)


@contextlib.contextmanager
def running(kind, cp, weir_bin, kafka_props=None, weir_args=None):
    """A started broker of `kind` and the seconds it took to answer; stopped on leaving."""
    b = Broker(kind, cp, weir_bin, kafka_props, weir_args)
    try:
        yield b, b.start()
    finally:
        b.stop()


def ratio_table(results):
    """Markdown rows of the median of each workload on both brokers and weir/Kafka;
    `results[kind][name]` lists one workload's figures."""
    lower_is_better = ("ms", "MiB")
    lines = ["| workload | Apache Kafka | weir | weir/Kafka |", "|---|---:|---:|---:|"]
    for name in results["kafka"]:
        k = statistics.median(results["kafka"][name])
        w = statistics.median(results["weir"].get(name, [float("nan")]))
        ratio = w / k if k else float("nan")
        better = "lower is better" if name.endswith(tuple(f"({u})" for u in lower_is_better)) else "higher is better"
        lines.append(f"| {name} ({better}) | {k:,.1f} | {w:,.1f} | {ratio:.2f} |")
    return "\n".join(lines)


def metadata_round_trip(port):
    # Metadata v1 request with a null topic list (all topics), client id "bench".
    body = (3).to_bytes(2, "big") + (1).to_bytes(2, "big") + (7).to_bytes(4, "big") + (5).to_bytes(2, "big") + b"bench" + (-1).to_bytes(4, "big", signed=True)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(len(body).to_bytes(4, "big") + body)
        size = int.from_bytes(s.recv(4), "big")
        got = 0
        while got < size:
            chunk = s.recv(size - got)
            if not chunk:
                raise OSError("closed")
            got += len(chunk)


def tool(cp, cls, args, timeout=600):
    out = subprocess.run(["java", "-Xmx512m", "-cp", cp, cls] + args, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cls} failed: {out.stderr[-500:]}")
    return out.stdout


def create_topic(cp, bootstrap, topic, partitions):
    # The same admin client for both brokers; Kafka's TopicCommand would add a JVM start
    # per topic to every measurement.
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(60)


def produce_perf(cp, bootstrap, topic, records, size, acks):
    out = tool(cp, "org.apache.kafka.tools.ProducerPerformance",
               ["--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
                "--producer-props", f"bootstrap.servers={bootstrap}", f"acks={acks}", "linger.ms=5",
                "batch.size=65536"])
    last = [l for l in out.splitlines() if "records sent" in l][-1]
    parts = [p.strip() for p in last.split(",")]
    rps = float(parts[1].split()[0])
    mbps = float(parts[1].split("(")[1].split()[0])
    p99 = float([p for p in parts if "99th" in p and "99.9th" not in p][0].split()[0])
    return {"records_per_s": rps, "mb_per_s": mbps, "p99_ms": p99}


def consume_perf(cp, bootstrap, topic, records):
    out = tool(cp, "org.apache.kafka.tools.ConsumerPerformance",
               ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records), "--timeout", "60000"])
    lines = [l for l in out.splitlines() if l[:2] == "20" and "," in l]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    fields = [f.strip() for f in lines[-1].split(",")]
    return {"records_per_s": float(fields[5]), "mb_per_s": float(fields[3])}


def bench_tool_classpath(cp):
    out = os.path.join(CACHE, "bench-classes")
    src = os.path.join(ROOT, "bench", "java", "BenchTool.java")
    if not os.path.exists(os.path.join(out, "BenchTool.class")) or os.path.getmtime(os.path.join(out, "BenchTool.class")) < os.path.getmtime(src):
        os.makedirs(out, exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-d", out, "-cp", cp, src], check=True)
    return cp + os.pathsep + out


def bench_tool(cp, *args, timeout=900):
    import json
    out = subprocess.run(["java", "-Xmx1g", "-cp", bench_tool_classpath(cp), "BenchTool"] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"BenchTool {args[0]} failed: {out.stderr[-500:]}")
    return json.loads(lines[-1])


def consume_group(cp, bootstrap, topic, records, members):
    """`members` consumers of one group (threads of one JVM, so JVM start-up is not measured)
    read `records` from the start; records/s from the first record to the last."""
    return bench_tool(cp, "group", bootstrap, topic, members, records)


def weir_bench(weir_bin, bootstrap, *args, timeout=900):
    """Runs `weir bench` against any broker; returns its JSON line."""
    import json
    out = subprocess.run([weir_bin, "bench", "--bootstrap", bootstrap] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"weir bench {args[0]} failed: {out.stderr[-300:]}")
    return json.loads(lines[-1])


def weir_bench_workloads(kind, b, add, records, weir_bin):
    """The same workloads measured with `weir bench` (a lean client) instead of the JVM tools."""
    r = weir_bench(weir_bin, b.bootstrap, "produce", "--topic", "wb", "--records", records, "--size", 100, "--partitions", 3, "--acks", 1)
    add(kind, "weir bench produce 100 B, acks=1 (records/s)", r["records_per_s"])
    r = weir_bench(weir_bin, b.bootstrap, "produce", "--topic", "wb1k", "--records", records // 4, "--size", 1024, "--partitions", 3, "--acks", -1)
    add(kind, "weir bench produce 1 KiB, acks=all (MB/s)", r["mb_per_s"])
    add(kind, "weir bench produce 1 KiB, acks=all, p99 ack latency (ms)", r["p99_ms"])
    for members in (3, 12):
        r = weir_bench(weir_bin, b.bootstrap, "consume", "--topic", "wb", "--members", members)
        add(kind, f"weir bench consume, group of {members} (records/s)", r["records_per_s"])
    r = weir_bench(weir_bin, b.bootstrap, "e2e", "--rate", 10000, "--seconds", 10)
    add(kind, "weir bench end-to-end p99 at 10,000 records/s (ms)", r["p99_ms"])
    r = weir_bench(weir_bin, b.bootstrap, "rebalance", "--members", 10, "--partitions", 20, "--session-timeout-ms", 6000)
    add(kind, "weir bench rebalance 10 members: all assigned (ms)", r["all_assigned_ms"])
    add(kind, "weir bench rebalance 10 members: after a crash (ms)", r["after_crash_ms"])
    r = weir_bench(weir_bin, b.bootstrap, "commit", "--seconds", 5, "--committers", 8)
    add(kind, "weir bench offset commits, 8 committers (commits/s)", r["commits_per_s"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "last-run.md"))
    ap.add_argument("--weir-bin", default=os.path.join(ROOT, "target", "release", "weir"))
    ap.add_argument("--only-weir-bench", action="store_true",
                    help="run only the `weir bench` workloads against both brokers")
    ap.add_argument("--only-produce-consume", action="store_true",
                    help="run only the 100 B produce (acks=1) and one-member consume workloads")
    ap.add_argument("--e2e-high-rate", type=int, default=0,
                    help="second end-to-end rate (default: half of Apache Kafka's 100 B produce rate in the same run)")
    ap.add_argument("--group-records", type=int, default=10_000_000,
                    help="records in the topic the groups of 3 and 12 read")
    args = ap.parse_args()
    cp = classpath()
    results = {"kafka": {}, "weir": {}}

    def add(kind, name, value):
        results[kind].setdefault(name, []).append(value)

    high_rate = args.e2e_high_rate
    for run in range(args.runs):
        for kind in ("kafka", "weir"):
            log(f"run {run + 1}/{args.runs}: {kind}")
            with running(kind, cp, args.weir_bin) as (b, startup_s):
                add(kind, "start-up to first answered request (ms)", startup_s * 1000)
                if args.only_weir_bench:
                    weir_bench_workloads(kind, b, add, args.records, args.weir_bin)
                    continue
                if not args.only_produce_consume:
                    time.sleep(2)
                    add(kind, "idle RSS (MiB)", b.rss_mib())
                create_topic(cp, b.bootstrap, "p100", 3)
                r = produce_perf(cp, b.bootstrap, "p100", args.records, 100, "1")
                add(kind, "produce 100 B, acks=1, 3 partitions (records/s)", r["records_per_s"])
                if args.only_produce_consume:
                    r = consume_perf(cp, b.bootstrap, "p100", args.records)
                    add(kind, "consume 100 B, one group member (records/s)", r["records_per_s"])
                    continue
                if kind == "kafka":
                    high_rate = args.e2e_high_rate or int(r["records_per_s"] / 2 // 1000 * 1000)
                create_topic(cp, b.bootstrap, "p1k", 3)
                r = produce_perf(cp, b.bootstrap, "p1k", args.records // 4, 1024, "all")
                add(kind, "produce 1 KiB, acks=all (MB/s)", r["mb_per_s"])
                add(kind, "produce 1 KiB, acks=all, p99 ack latency (ms)", r["p99_ms"])
                add(kind, "RSS after produce workloads (MiB)", b.rss_mib())
                try:
                    r = consume_perf(cp, b.bootstrap, "p100", args.records)
                    add(kind, "consume 100 B, one group member (records/s)", r["records_per_s"])
                except Exception as e:
                    log(f"  consume failed on {kind}: {e}")
                create_topic(cp, b.bootstrap, "group12", 12)
                produce_perf(cp, b.bootstrap, "group12", args.group_records, 100, "1")
                for members in (3, 12):
                    try:
                        r = consume_group(cp, b.bootstrap, "group12", args.group_records, members)
                        add(kind, f"consume {args.group_records:,} x 100 B, group of {members} (records/s)", r["records_per_s"])
                        add(kind, f"group of {members}: every member has partitions (ms)", r["all_assigned_ms"])
                    except Exception as e:
                        log(f"  group consume failed on {kind}: {e}")
                create_topic(cp, b.bootstrap, "e2e", 1)
                add(kind, "offered rate of the second end-to-end run (records/s)", high_rate)
                for rate in (10_000, high_rate):
                    r = bench_tool(cp, "e2e", b.bootstrap, "e2e", rate, 10, 100)
                    for q in ("p50", "p99", "p999"):
                        label = f"{rate:,} records/s" if rate == 10_000 else "half of Kafka's max rate"
                        add(kind, f"end-to-end {q.replace('p999', 'p99.9')} at {label} (ms)", r[f"{q}_ms"])
                create_topic(cp, b.bootstrap, "reb", 200)
                for members in (10, 100):
                    r = bench_tool(cp, "rebalance", b.bootstrap, "reb", members)
                    add(kind, f"rebalance: {members} members all assigned (ms)", r["all_assigned_ms"])
                    add(kind, f"rebalance: {members} members, reassigned after a leave (ms)", r["after_leave_ms"])
                r = bench_tool(cp, "commit", b.bootstrap, "reb", 10, 8)
                add(kind, "offset commits, 8 committers (commits/s)", r["commits_per_s"])
                for i in range(10):
                    create_topic(cp, b.bootstrap, f"many{i}", 100)
                time.sleep(2)
                add(kind, "RSS with 1,000 more partitions (MiB)", b.rss_mib())

    table = ratio_table(results)
    with open(args.out, "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
