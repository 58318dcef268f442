"""Shared pieces of the acceptance scenarios: a weir process on a free loopback port,
Apache Kafka's tools and Java client resolved from Maven Central, and PASS/FAIL lines."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(ROOT, "tests", "acceptance", ".work")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Weir:
    """A weir broker in its own temp directory. Survives restarts and kills."""

    def __init__(self, bin_path, *extra):
        self.bin = bin_path
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="weir-accept-")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "weir.log"), "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", self.bootstrap, "--data-dir", os.path.join(self.dir, "data"),
             "--group-initial-rebalance-delay-ms", "0"] + self.extra,
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"weir exited with {self.proc.returncode}; see {self.dir}/weir.log")
                time.sleep(0.02)
        raise RuntimeError("weir did not start listening within 20 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def kafka_classpath():
    """Apache Kafka's jars (broker, tools, clients) from Maven Central, cached."""
    os.makedirs(WORK, exist_ok=True)
    cp_file = os.path.join(WORK, "kafka-classpath.txt")
    if not os.path.exists(cp_file):
        subprocess.run(["mvn", "-q", "-f", os.path.join(ROOT, "bench", "pom.xml"), "dependency:build-classpath",
                        f"-Dmdep.outputFile={cp_file}"], check=True)
    return open(cp_file).read().strip()


def java_scenarios_classpath():
    """Compiles tests/acceptance/java/Scenarios.java against the Kafka client jars."""
    cp = kafka_classpath()
    out = os.path.join(WORK, "java-classes")
    src = os.path.join(ROOT, "tests", "acceptance", "java", "Scenarios.java")
    stamp = os.path.join(out, "Scenarios.class")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(src):
        os.makedirs(out, exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-d", out, "-cp", cp, src], check=True)
    return cp + os.pathsep + out


def kafka_tool(cls, *args, timeout=120):
    """Runs one of Apache Kafka's own CLI tools; returns (exit code, stdout+stderr)."""
    r = subprocess.run(["java", "-Xmx256m", "-cp", kafka_classpath(), cls] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    text = "\n".join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith("SLF4J"))
    return r.returncode, text


CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {why}", flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)
