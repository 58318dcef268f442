"""The compatibility harness's moving parts: the two brokers (weir and Apache Kafka), the
clients with their pinned versions, and a group member running in its own process.

Every client is driven through the same two roles (see clients/*): `basic` creates a
3-partition topic, produces keyed records, reads them back and deletes the topic;
`member` is one consumer group member. The Java, confluent-kafka and franz-go drivers
also have the transaction roles (`txn-commit`, `txn-abort`, `txn-open`, `txn-fence`,
`txn-ctp`). Their output is plain lines the runner checks, so a check means the same
thing for every client.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(HERE, ".work")
CLIENTS_DIR = os.path.join(HERE, "clients")
KAFKA_DIR = os.path.join(HERE, "kafka")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kafka_classpath():
    """Apache Kafka's jars (broker, tools, Java client), resolved from Maven Central once."""
    return subprocess.run([os.path.join(KAFKA_DIR, "classpath.sh")], check=True, capture_output=True,
                          text=True).stdout.strip()


def kafka_version():
    pom = open(os.path.join(KAFKA_DIR, "pom.xml")).read()
    return re.search(r"<kafka.version>([^<]+)<", pom).group(1)


def kafka_tool(name, *args, timeout=120):
    """One of Apache Kafka's CLI tools by name (kafka-topics, ...): (exit code, output)."""
    r = subprocess.run([os.path.join(KAFKA_DIR, "tool"), name] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    text = "\n".join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith("SLF4J"))
    return r.returncode, text


def java_classpath():
    """Compiles every .java file in clients/java against the Kafka client jars, into
    WEIR_COMPAT_JAVA_CLASSES when set (a worktree whose .work is shared keeps its own).
    All are compiled again when any source is newer than the oldest class compiled from one."""
    cp = kafka_classpath()
    out = os.environ.get("WEIR_COMPAT_JAVA_CLASSES") or os.path.join(WORK, "java-classes")
    src_dir = os.path.join(CLIENTS_DIR, "java")
    sources = sorted(os.path.join(src_dir, f) for f in os.listdir(src_dir) if f.endswith(".java"))
    stamps = [os.path.join(out, os.path.basename(s)[:-len(".java")] + ".class") for s in sources]
    if not all(os.path.exists(s) for s in stamps) or \
            min(os.path.getmtime(s) for s in stamps) < max(os.path.getmtime(s) for s in sources):
        os.makedirs(out, exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-d", out, "-cp", cp] + sources, check=True)
    return cp + os.pathsep + out


# ---------------------------------------------------------------- brokers

# Consumer-protocol groups get their session and heartbeat times from the broker, so both
# brokers are told the times the classic members ask for (6 s and 0.5 s); kafka/start.sh
# sets the same four settings.
CONSUMER_GROUP_FLAGS = ["--group-consumer-session-timeout-ms", "6000", "--group-consumer-min-session-timeout-ms", "6000",
                        "--group-consumer-heartbeat-interval-ms", "500",
                        "--group-consumer-min-heartbeat-interval-ms", "500"]

class Weir:
    """A weir broker in its own temp directory; restart keeps the data."""
    name = "weir"

    def __init__(self, bin_path, *extra):
        self.bin = bin_path
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # Its HTTP listener (metrics) on a port of its own, so several brokers can run at once.
        self.http_listen = f"127.0.0.1:{free_port()}"
        self.dir = tempfile.mkdtemp(prefix="weir-compat-")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "weir.log"), "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", self.bootstrap, "--data-dir", os.path.join(self.dir, "data"),
             "--group-initial-rebalance-delay-ms", "0", "--http-listen", self.http_listen]
            + CONSUMER_GROUP_FLAGS + self.extra,
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

    def restart(self):
        self.stop()
        self.start()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Kafka:
    """Apache Kafka through kafka/start.sh and kafka/stop.sh; restart keeps the data."""
    name = "kafka"

    def __init__(self):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="kafka-compat-")

    def start(self):
        subprocess.run([os.path.join(KAFKA_DIR, "start.sh"), str(self.port), self.dir], check=True, timeout=180)
        return self

    def stop(self):
        subprocess.run([os.path.join(KAFKA_DIR, "stop.sh"), self.dir], check=True, timeout=120)

    def restart(self):
        self.stop()
        self.start()


def add_broker_args(ap):
    """The options every differential script takes: which broker(s), and which weir binary."""
    ap.add_argument("--broker", default="both", choices=["weir", "kafka", "both"])
    ap.add_argument("--weir-bin", default=os.path.join(ROOT, "target", "release", "weir"))


def broker_names(args):
    """The brokers `--broker` names, Apache Kafka first so weir is compared with a known answer."""
    return ["kafka", "weir"] if args.broker == "both" else [args.broker]


def each_broker(args):
    """Starts each broker `--broker` names in turn and yields (name, broker); the broker is
    stopped when the caller moves on or leaves the loop, by an exception too."""
    for name in broker_names(args):
        broker = Weir(args.weir_bin) if name == "weir" else Kafka()
        print(f"== starting {name} (its log under {broker.dir})", flush=True)
        broker.start()
        try:
            yield name, broker
        finally:
            broker.stop()


# ---------------------------------------------------------------- clients

def _py(client):
    driver = os.path.join(CLIENTS_DIR, "python", "drivers.py")
    return lambda role, *args: [sys.executable, driver, role, client, *args]


def _bin(name):
    path = os.path.join(WORK, name)
    return lambda role, *args: [path, role, *args]


def _java(role, *args):
    return ["java", "-Xmx256m", "-cp", java_classpath(), "Scenarios", role, *args]


def _js(role, *args):
    return ["node", os.path.join(CLIENTS_DIR, "js", "driver.js"), role, *args]


def _pip_version(pkg):
    try:
        from importlib.metadata import version
        return version(pkg)
    except Exception:  # noqa: BLE001 - reported as not installed
        return "not installed"


def _go_version(module):
    gomod = open(os.path.join(CLIENTS_DIR, "go", "go.mod")).read()
    m = re.search(re.escape(module) + r" (v\S+)", gomod)
    return m.group(1) if m else "?"


def _versions():
    def confluent():
        try:
            import confluent_kafka
            return f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
        except ImportError:
            return "not installed"

    def kcat():
        try:
            out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
            m = re.search(r"Version (\S+) .*?librdkafka (\S+)", out, re.S)
            return f"{m.group(1)} (librdkafka {m.group(2)})" if m else out.splitlines()[0]
        except OSError:
            return "not installed"

    def rdkafka():
        toml = os.path.join(CLIENTS_DIR, "rust", "Cargo.toml")
        m = re.search(r'rdkafka = \{ version = "=([^"]+)"', open(toml).read())
        lock = os.path.join(CLIENTS_DIR, "rust", "Cargo.lock")
        sys_ver = re.search(r'name = "rdkafka-sys"\nversion = "[^+"]+\+([^"]+)"', open(lock).read()) if os.path.exists(lock) else None
        return f"{m.group(1)} (librdkafka {sys_ver.group(1) if sys_ver else '?'}, built from source)"

    def kafkajs():
        pkg = os.path.join(CLIENTS_DIR, "js", "node_modules", "kafkajs", "package.json")
        return re.search(r'"version": "([^"]+)"', open(pkg).read()).group(1) if os.path.exists(pkg) else "not installed"

    return {
        "kcat": kcat,
        "confluent-kafka": confluent,
        "java": lambda: f"kafka-clients {kafka_version()}",
        "franz-go": lambda: _go_version("github.com/twmb/franz-go"),
        "sarama": lambda: _go_version("github.com/IBM/sarama"),
        "kafka-python": lambda: _pip_version("kafka-python"),
        "aiokafka": lambda: _pip_version("aiokafka"),
        "kafkajs": kafkajs,
        "rdkafka": rdkafka,
    }


# name -> command builder: role ("basic" | "member" | "txn-...") and its arguments -> argv
CLIENTS = {
    "kcat": _py("kcat"),
    "confluent-kafka": _py("confluent-kafka"),
    "java": _java,
    "franz-go": _bin("franz"),
    "sarama": _bin("sarama"),
    "kafka-python": _py("kafka-python"),
    "aiokafka": _py("aiokafka"),
    "kafkajs": _js,
    "rdkafka": _bin(os.path.join("rust-target", "release", "rdkafka-driver")),
}
VERSIONS = _versions()


class MemberView:
    """What one group member printed: the values it read, its latest assignment, and its
    rebalance callbacks ("K assign|revoke p,p ..." lines) as (kind, partitions) in order."""

    def __init__(self):
        self.values = []
        self.assignment = None
        self.callbacks = []
        self.lock = threading.Lock()

    def take(self, line):
        parts = line.rstrip("\n").split(" ", 3)
        with self.lock:
            if parts[0] == "R" and len(parts) == 4:
                self.values.append(parts[3])
            elif parts[0] == "A":
                text = line[2:].strip().strip("[]").replace(" ", "")
                self.assignment = sorted(int(x) for x in text.split(",") if x)
            elif parts[0] == "K" and len(parts) >= 2:
                ps = parts[2] if len(parts) > 2 else ""
                self.callbacks.append((parts[1], sorted(int(x) for x in ps.split(",") if x)))


class _Process:
    """A driver role in its own process, so it can leave cleanly or be killed -9."""

    def _start(self, client, role, args, protocol=None, assignor=None):
        # The consumer protocol (KIP-848) and its server-side assignor reach every driver
        # through the environment; a topic starting with "^" is a regex subscription.
        env = dict(os.environ)
        if protocol:
            env["COMPAT_GROUP_PROTOCOL"] = protocol
        if assignor:
            env["COMPAT_GROUP_REMOTE_ASSIGNOR"] = assignor
        # The process's own log goes to a file, so a failed check can point at what the client saw.
        self.log_path = tempfile.mkstemp(prefix=f"{role}-{client}-", suffix=".log")[1]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(CLIENTS[client](role, *args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def leave(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill9()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


class Member(MemberView, _Process):
    """A group member in its own process. The Python drivers and the Java one take an
    assignment strategy and a static instance id."""

    def __init__(self, client, bootstrap, topic, group, strategy=None, instance=None, protocol=None, assignor=None):
        MemberView.__init__(self)
        args = [bootstrap, topic, group]
        if strategy or instance:
            args += [strategy or "range"] + ([instance] if instance else [])
        self._start(client, "member", args, protocol, assignor)

    def _read(self):
        for line in self.proc.stdout:
            self.take(line)


class Pair(_Process):
    """Two members of one group in one process (the `pair` role), subscribed at the same
    moment; `members` are their views."""

    def __init__(self, client, bootstrap, topic, group, instance=None):
        self.members = [MemberView(), MemberView()]
        self._start(client, "pair", [bootstrap, topic, group] + ([instance] if instance else []))

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split(" ", 2)
            if parts[0] == "M" and len(parts) == 3 and parts[1] in ("0", "1"):
                self.members[int(parts[1])].take(parts[2])


def wait_until(cond, timeout_s):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


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
