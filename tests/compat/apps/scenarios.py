"""Real applications against a broker, resolved from Maven Central and run unchanged, each
in its own JVM so it can be stopped cleanly or killed -9:

  streams   Kafka Streams word count (streams/WordCount.java): lines -> words -> a
            repartition topic keyed by word -> a count store with its changelog -> counts.
            At least once, exactly once (v2), and exactly once through two kill -9s.
  connect   a distributed Kafka Connect worker with the FileStream connectors: a file to a
            topic to another file across a clean restart, then exactly-once source support
            through a kill -9 of the worker.

Each check is recorded through `record(check, ok, detail)`; run.py names the checks. The
applications' own logs go to files in a temp directory, named in a failing check's detail
(and removed when every check passed).
"""
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
# slf4j-simple's log lines with the time of day, so an application's log lines up with the broker's.
LOG_FLAGS = ["-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"]


def uid():
    return uuid.uuid4().hex[:8]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def classpath(name):
    """The application's classpath (jars and compiled sources), built once by build.sh."""
    return subprocess.run([os.path.join(HERE, "build.sh"), name], check=True, capture_output=True,
                          text=True).stdout.strip()


def version(name):
    pom = open(os.path.join(HERE, name, "pom.xml")).read()
    return re.search(r"<(?:kafka|connect)\.version>([^<]+)<", pom).group(1)


def note(text):
    """A progress line of a scenario, indented under the runner's own lines."""
    print(f"   {time.strftime('%H:%M:%S')} {text}", flush=True)


class Checks:
    """Passes each check on to the runner, and keeps the applications' temp directory (state,
    files, logs) only when one failed, for its detail to point into."""

    def __init__(self, record, prefix):
        self.record = record
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.failed = False

    def __call__(self, check, ok, detail=""):
        self.failed |= not ok
        self.record(check, ok, detail)

    def finish(self, completed):
        if completed and not self.failed:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(cond, timeout_s, step_s=0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return cond()


class Jvm:
    """One JVM process: its stdout lines are collected, its stderr goes to a log file."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout_s=60):
        """SIGTERM: the application closes cleanly (commits, flushes) and exits."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill9()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- Kafka helpers (confluent-kafka)

def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def delete_topics(bootstrap, topics):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in (admin.delete_topics(topics).values() if topics else []):
        try:
            f.result(30)
        except Exception:  # noqa: BLE001 - best effort, not a check
            pass


def topic_names(bootstrap):
    from confluent_kafka.admin import AdminClient
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def topic_config(bootstrap, topic, name):
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([res])[res].result(30)
    return entries[name].value if name in entries else None


class Feeder:
    """Produces lines to a topic, all at once or in chunks with a pause between them (so an
    application is mid-way through its input when it is killed)."""

    def __init__(self, bootstrap, topic):
        from confluent_kafka import Producer
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.sent = 0

    def send(self, lines):
        for line in lines:
            while True:
                try:
                    self.producer.produce(self.topic, value=line)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.sent += 1
        if self.producer.flush(60):
            raise RuntimeError("lines left unsent after 60 s")

    def send_in_chunks(self, lines, chunks, pause_s):
        step = max(1, len(lines) // chunks)
        for i in range(0, len(lines), step):
            self.send(lines[i:i + step])
            time.sleep(pause_s)


class Reader:
    """Reads a whole topic from its start in a thread with confluent-kafka at one isolation
    level: every record's (partition, offset, key, value) in order, and the newest value per
    key."""

    def __init__(self, bootstrap, topic, isolation, decode=lambda b: b.decode()):
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"compat-apps-reader-{uid()}",
                                  "enable.auto.commit": False, "isolation.level": isolation})
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        self.consumer.assign(self.partitions)
        self.decode = decode
        self.records = []
        self.latest = {}
        self.errors = []
        self.ends, self.positions = {}, {}
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        # Every call on the consumer is made from this thread: a watermark query from another
        # thread while this one consumes can block for good.
        from confluent_kafka import TopicPartition
        ends_at = 0.0
        while self.running:
            for m in self.consumer.consume(500, 0.2):
                if m.error():
                    if not m.error().retriable() and m.error().code() != -191:  # -191: partition EOF
                        self.errors.append(str(m.error()))
                    continue
                key = m.key().decode() if m.key() is not None else None
                value = self.decode(m.value()) if m.value() is not None else None
                with self.lock:
                    self.records.append((m.partition(), m.offset(), key, value))
                    self.latest[key] = value
            if time.time() >= ends_at:
                tps = [TopicPartition(tp.topic, tp.partition) for tp in self.partitions]
                ends = {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps}
                positions = {tp.partition: tp.offset for tp in self.consumer.position(tps)}
                with self.lock:
                    self.ends, self.positions = ends, positions
                ends_at = time.time() + 0.5

    def caught_up(self):
        """Every partition read up to its end as last seen (the high watermark)."""
        with self.lock:
            ends, positions = dict(self.ends), dict(self.positions)
        return bool(ends) and all(positions.get(p, -1) >= end or end == 0 for p, end in ends.items())

    def snapshot(self):
        with self.lock:
            return list(self.records), dict(self.latest)

    def close(self):
        self.running = False
        self.thread.join(10)
        self.consumer.close()


def read_all(bootstrap, topic, isolation, decode=lambda b: b.decode(), timeout_s=60):
    """The whole topic at one isolation level, once nothing more is being written to it."""
    r = Reader(bootstrap, topic, isolation, decode)
    try:
        wait_until(r.caught_up, timeout_s, 0.5)
        time.sleep(0.5)
        return r.snapshot()
    finally:
        r.close()


# ---------------------------------------------------------------- Kafka Streams

STREAMS_SEPARATORS = [" ", " ", " ", ", ", ". ", "; ", " - "]


def word_lines(seed, words_total):
    """Lines of 1-12 words (from a skewed vocabulary of 400, with mixed case and
    punctuation) holding words_total words, and the count of each word in lower case."""
    rng = random.Random(seed)
    vocab = [f"{rng.choice(['alpha', 'beta', 'gamma', 'delta', 'omega', 'kappa'])}{i}" for i in range(400)]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]
    lines, counts, left = [], collections.Counter(), words_total
    while left > 0:
        n = min(left, rng.randint(1, 12))
        words = rng.choices(vocab, weights, k=n)
        counts.update(words)
        text = ""
        for i, w in enumerate(words):
            text += (rng.choice(STREAMS_SEPARATORS) if i else "") + (w.upper() if rng.random() < 0.1 else w)
        lines.append(text + rng.choice(["", ".", "!"]))
        left -= n
    return lines, dict(counts)


def decode_long(b):
    return struct.unpack(">q", b)[0]


class WordCountApp:
    """The Streams word count in its own JVM. `S STATE` lines tell its state."""

    def __init__(self, bootstrap, app_id, source, sink, guarantee, state_dir, log_dir):
        self.argv = ["java", "-Xmx384m", *LOG_FLAGS, "-cp", classpath("streams"), "WordCount", bootstrap, app_id, source, sink,
                     guarantee, state_dir]
        self.log_path = os.path.join(log_dir, f"{app_id}.log")
        self.jvm = None

    def start(self):
        self.jvm = Jvm(self.argv, self.log_path)
        return self

    def errors(self):
        return [l[2:] for l in self.jvm.lines if l.startswith("E ")]


def streams(record, bootstrap, words_small=20000, words_large=120000):
    """The word count under at_least_once and exactly_once_v2, then exactly_once_v2 with two
    kill -9s of the application mid-way through a larger input (restarted first with its
    state directory, then with a fresh one)."""
    record = Checks(record, "compat-streams-")
    log_dir, topics, completed = record.dir, [], False

    def new_topic(kind):
        t = f"compat-wc-{kind}-{uid()}"
        create_topic(bootstrap, t, 3)
        topics.append(t)
        return t

    def compare(latest, want):
        wrong = {w: (latest.get(w), c) for w, c in want.items() if latest.get(w) != c}
        extra = sorted(set(latest) - set(want))
        return (not wrong and not extra,
                f"{len(wrong)} of {len(want)} words with a wrong count (got, want) e.g. {dict(list(wrong.items())[:3])}"
                + (f", unknown keys {extra[:3]}" if extra else ""))

    def run_once(kind, guarantee, isolation, seed):
        source, sink = new_topic(f"{kind}-in"), new_topic(f"{kind}-out")
        app_id = f"compat-wc-{kind}-{uid()}"
        lines, want = word_lines(seed, words_small)
        Feeder(bootstrap, source).send(lines)
        app = WordCountApp(bootstrap, app_id, source, sink, guarantee, os.path.join(log_dir, app_id), log_dir).start()
        reader = Reader(bootstrap, sink, isolation, decode_long)
        started = time.time()
        try:
            done = wait_until(lambda: compare(reader.snapshot()[1], want)[0] or not app.jvm.alive(), 120)
        finally:
            reader.close()
            app.jvm.stop()
        note(f"{kind}: {sum(want.values())} words counted in {time.time() - started:.1f} s")
        records, latest = read_all(bootstrap, sink, isolation, decode_long)
        ok, why = compare(latest, want)
        return app_id, ok and done and not app.errors(), (
            f"{why}; {len(records)} output records read with {isolation} after {time.time() - started:.1f} s; "
            f"errors {app.errors()[:2]}; log {app.log_path}")

    try:
        app_id, ok, why = run_once("alo", "at_least_once", "read_uncommitted", 1)
        record("streams.alo", ok, why)
        names = topic_names(bootstrap)
        repartition, changelog = f"{app_id}-words-repartition", f"{app_id}-counts-changelog"
        policy = topic_config(bootstrap, changelog, "cleanup.policy") if changelog in names else None
        record("streams.internal-topics", repartition in names and changelog in names and policy == "compact",
               f"repartition topic {'created' if repartition in names else 'missing'}, changelog "
               f"{'created' if changelog in names else 'missing'} with cleanup.policy {policy}")
        topics += [repartition, changelog]

        app_id, ok, why = run_once("eos", "exactly_once_v2", "read_committed", 2)
        record("streams.eos", ok, why)
        topics += [f"{app_id}-words-repartition", f"{app_id}-counts-changelog"]

        record("streams.eos-crash", *streams_crash(bootstrap, new_topic, log_dir, words_large, compare))
        completed = True
    finally:
        delete_topics(bootstrap, topics)
        record.finish(completed)


def streams_crash(bootstrap, new_topic, log_dir, words_total, compare):
    source, sink = new_topic("crash-in"), new_topic("crash-out")
    app_id = f"compat-wc-crash-{uid()}"
    lines, want = word_lines(3, words_total)
    total = sum(want.values())
    feeder = Feeder(bootstrap, source)
    feeding = threading.Thread(target=feeder.send_in_chunks, args=(lines, 20, 0.5), daemon=True)
    state_dirs = [os.path.join(log_dir, app_id, "first"), os.path.join(log_dir, app_id, "fresh")]
    app = WordCountApp(bootstrap, app_id, source, sink, "exactly_once_v2", state_dirs[0], log_dir).start()
    reader = Reader(bootstrap, sink, "read_committed", decode_long)
    counted = lambda: sum(reader.snapshot()[1].values())  # noqa: E731
    kills, started = [], time.time()
    try:
        feeding.start()
        # Two kills, each once a share of the words is counted; then a run to the end.
        for share, state_dir in ((0.3, state_dirs[0]), (0.65, state_dirs[1])):
            if not wait_until(lambda: counted() >= share * total or not app.jvm.alive(), 120):
                break
            kills.append(f"{counted()} of {total} counted, {feeder.sent} of {len(lines)} lines fed")
            note(f"crash: kill -9 at {time.time() - started:.1f} s with {kills[-1]}")
            app.jvm.kill9()
            app.argv[-1] = state_dir
            app.start()
        feeding.join(120)
        done = wait_until(lambda: compare(reader.snapshot()[1], want)[0] or not app.jvm.alive(), 180)
        note(f"crash: all {total} words counted at {time.time() - started:.1f} s")
    finally:
        reader.close()
        app.jvm.stop()
    records, latest = read_all(bootstrap, sink, "read_committed", decode_long)
    ok, why = compare(latest, want)
    # Each committed count of a word is above the one before: a count seen twice or going
    # down means input counted twice or a store restored wrong.
    by_key = collections.defaultdict(list)
    for p, o, k, v in sorted(records):
        by_key[k].append(v)
    not_rising = [k for k, vs in by_key.items() if any(b <= a for a, b in zip(vs, vs[1:]))]
    midway = len(kills) == 2 and all(not k.startswith(f"{total} ") for k in kills)
    topics_left = [f"{app_id}-words-repartition", f"{app_id}-counts-changelog"]
    delete_topics(bootstrap, topics_left)
    return (ok and done and midway and not not_rising and not app.errors(),
            f"{why}; killed at: {kills}; {len(not_rising)} words whose committed counts do not rise "
            f"{not_rising[:3]}; {len(records)} records read with read_committed after {time.time() - started:.1f} s; "
            f"errors {app.errors()[:2]}; log {app.log_path}")


# ---------------------------------------------------------------- Kafka Connect

class Worker:
    """A distributed Kafka Connect worker in its own JVM, with its REST API on a free port
    (kept across restarts) and its internal topics created by itself."""

    def __init__(self, bootstrap, group, log_dir, rest_port, extra=None):
        self.url = f"http://127.0.0.1:{rest_port}"
        self.props = os.path.join(log_dir, f"{group}.properties")
        self.log_path = os.path.join(log_dir, f"{group}.log")
        self.group = group
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "config.storage.topic": f"{group}-configs",
            "offset.storage.topic": f"{group}-offsets",
            "status.storage.topic": f"{group}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "5",
            "status.storage.partitions": "3",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "listeners": self.url,
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(rest_port),
            # Source offsets every second instead of every minute (at least once only).
            "offset.flush.interval.ms": "1000",
            # A killed worker leaves the group once its session times out: 6 s, the broker's minimum.
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1500",
            # Plugins from their service manifests only: a reflective scan of the classpath
            # adds some 20 s to every start.
            "plugin.discovery": "service_load",
        }
        conf.update(extra or {})
        with open(self.props, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in conf.items())
        self.jvm = None

    def internal_topics(self):
        return [f"{self.group}-{kind}" for kind in ("configs", "offsets", "status")]

    def start(self):
        self.jvm = Jvm(["java", "-Xmx512m", *LOG_FLAGS, "-cp", classpath("connect"), "org.apache.kafka.connect.cli.ConnectDistributed",
                        self.props], self.log_path)
        if not wait_until(lambda: self.rest("GET", "/connectors") is not None or not self.jvm.alive(), 120, 0.5) \
                or not self.jvm.alive():
            raise RuntimeError(f"the Connect worker did not start; see {self.log_path}")
        return self

    def rest(self, method, path, body=None):
        """The parsed answer of the worker's REST API, or None if it gives none (yet)."""
        req = urllib.request.Request(self.url + path, method=method, headers={"Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return json.loads(text) if text else {}
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def create(self, name, config):
        """Creates a connector, retried while the worker is still joining its group."""
        def created():
            got = self.rest("PUT", f"/connectors/{name}/config", config)
            return got is not None and "name" in got
        if not wait_until(lambda: created() or not self.jvm.alive(), 60, 1) or not self.jvm.alive():
            raise RuntimeError(f"connector {name} not created; see {self.log_path}")

    def task_state(self, name):
        got = self.rest("GET", f"/connectors/{name}/status") or {}
        return [t.get("state") for t in got.get("tasks", [])]


def file_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def append_lines(path, lines):
    with open(path, "a") as f:
        f.writelines(line + "\n" for line in lines)


def connect(record, bootstrap, lines_small=5000, lines_large=150000):
    """FileStreamSource -> topic -> FileStreamSink across a clean worker restart, then
    exactly-once source support through a kill -9 of the worker."""
    record = Checks(record, "compat-connect-")
    log_dir, port, topics, completed = record.dir, free_port(), [], False
    try:
        # 1. A file to a topic to another file; the worker stops, lines are appended, it restarts.
        topic = f"compat-connect-{uid()}"
        create_topic(bootstrap, topic, 1)
        topics.append(topic)
        src, dst = os.path.join(log_dir, "source.txt"), os.path.join(log_dir, "sink.txt")
        first = [f"line-{i:06d} of the first part" for i in range(lines_small)]
        append_lines(src, first)
        worker = Worker(bootstrap, f"compat-connect-{uid()}", log_dir, port)
        topics += worker.internal_topics()
        started = time.time()
        worker.start()
        note(f"connect: worker up in {time.time() - started:.1f} s")
        try:
            worker.create("file-source", {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                                          "tasks.max": "1", "file": src, "topic": topic})
            worker.create("file-sink", {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                                        "tasks.max": "1", "file": dst, "topics": topic})
            started = time.time()
            wait_until(lambda: len(file_lines(dst)) >= len(first), 90, 0.5)
            got = file_lines(dst)
            note(f"connect: {len(got)} lines in the sink file after {time.time() - started:.1f} s")
            record("connect.file-to-file", got == first,
                   f"{len(got)} lines in the sink file of {len(first)} ({len(set(got))} distinct, in order: "
                   f"{got == sorted(got)}) after {time.time() - started:.1f} s; tasks {worker.task_state('file-source')}"
                   f" {worker.task_state('file-sink')}; log {worker.log_path}")
            worker.jvm.stop()
            second = [f"line-{i:06d} of the second part" for i in range(lines_small)]
            append_lines(src, second)
            started = time.time()
            worker.start()
            wait_until(lambda: set(first + second) <= set(file_lines(dst)), 90, 0.5)
            got = file_lines(dst)
            note(f"connect: {len(got)} lines in the sink file {time.time() - started:.1f} s after the restart")
            lost = set(first + second) - set(got)
            record("connect.restart", not lost and got == first + second,
                   f"{len(lost)} lines lost, {len(got) - len(set(got))} duplicates, {len(got)} lines in the sink "
                   f"file of {len(first + second)} after {time.time() - started:.1f} s; log {worker.log_path}")
        finally:
            worker.jvm.stop()

        # 2. Exactly-once source support: the worker is killed mid-way through a large file.
        for check, ok, why in connect_eos(bootstrap, log_dir, port, lines_large, topics):
            record(check, ok, why)
        completed = True
    finally:
        delete_topics(bootstrap, topics)
        record.finish(completed)


def connect_eos(bootstrap, log_dir, port, lines_total, topics):
    topic = f"compat-connect-eos-{uid()}"
    create_topic(bootstrap, topic, 1)
    topics.append(topic)
    src = os.path.join(log_dir, "eos-source.txt")
    lines = [f"eos-{i:07d}" for i in range(lines_total)]
    head, rest = lines[:1000], lines[1000:]
    append_lines(src, head)
    worker = Worker(bootstrap, f"compat-connect-eos-{uid()}", log_dir, port, {"exactly.once.source.support": "enabled"})
    topics += worker.internal_topics()
    results = []
    reader = None
    try:
        started = time.time()
        worker.start()
        note(f"connect eos: worker up in {time.time() - started:.1f} s")
        worker.create("eos-source", {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                                     "tasks.max": "1", "file": src, "topic": topic, "batch.size": "500",
                                     "exactly.once.support": "required", "transaction.boundary": "poll"})
        reader = Reader(bootstrap, topic, "read_committed")
        started = time.time()
        wait_until(lambda: len(reader.snapshot()[0]) >= len(head), 90, 0.5)
        got = [v for _, _, _, v in reader.snapshot()[0]]
        note(f"connect eos: {len(got)} lines committed after {time.time() - started:.1f} s")
        results.append(("connect.eos", got == head,
                        f"{len(got)} of {len(head)} lines read with read_committed after {time.time() - started:.1f} s; "
                        f"tasks {worker.task_state('eos-source')}; log {worker.log_path}"))

        # The rest of the file is written in chunks while the task reads it; the worker is
        # killed once a third of it is committed, then restarted.
        writing = threading.Thread(target=lambda: [(append_lines(src, rest[i:i + 10000]), time.sleep(0.3))
                                                   for i in range(0, len(rest), 10000)], daemon=True)
        writing.start()
        wait_until(lambda: len(reader.snapshot()[0]) >= lines_total // 3 or not worker.jvm.alive(), 90, 0.1)
        at_kill = len(reader.snapshot()[0])
        note(f"connect eos: kill -9 with {at_kill} of {lines_total} lines committed")
        worker.jvm.kill9()
        writing.join(60)
        started = time.time()
        worker.start()
        wait_until(lambda: len(reader.snapshot()[0]) >= lines_total, 120, 0.5)
        note(f"connect eos: {len(reader.snapshot()[0])} lines committed {time.time() - started:.1f} s after the restart")
        time.sleep(2)  # anything read twice would arrive now
    finally:
        if reader:
            reader.close()
        worker.jvm.stop()
    records, _ = read_all(bootstrap, topic, "read_committed")
    got = [v for _, _, _, v in records]
    dup = len(got) - len(set(got))
    results.append(("connect.eos-crash", got == lines and 0 < at_kill < lines_total,
                    f"killed with {at_kill} of {lines_total} lines committed; after the restart {len(got)} read with "
                    f"read_committed, {dup} duplicates, {len(set(lines) - set(got))} missing, in order: "
                    f"{got == sorted(got)}, {time.time() - started:.1f} s after the restart; log {worker.log_path}"))
    return results
