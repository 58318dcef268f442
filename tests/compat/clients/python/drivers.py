#!/usr/bin/env python3
"""The Python clients of the compatibility harness: confluent-kafka (librdkafka),
kafka-python and aiokafka, each driving the same two roles as every other client.

  drivers.py basic CLIENT BOOTSTRAP TOPIC COUNT
      create TOPIC with 3 partitions, produce COUNT keyed records, read them back from the
      start of every partition, delete TOPIC. Prints "T partitions", "P partition offset key
      value" per acknowledged record, "C partition offset key value" per record read,
      "D" once the topic is deleted, "E message" on an error.
  drivers.py member CLIENT BOOTSTRAP TOPIC GROUP [STRATEGY [INSTANCE]]
      a consumer group member: "R partition offset value" per record, "A p,p,..." for its
      assignment after each poll; commits what it read; leaves the group when stdin closes.

CLIENT is confluent-kafka, kafka-python, aiokafka or kcat (the kcat binary, driven from
here: it has no admin API, so Apache Kafka's kafka-topics creates and deletes its topic,
and its consumer-group mode reports assignments on stderr). The checks are made by run.py.
"""
import os
import sys
import threading
import time

SESSION_TIMEOUT_MS = 6000


def key_value(i):
    return f"k{i % 30}", f"v{i}"


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def stdin_closed():
    ev = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), ev.set()), daemon=True).start()
    return ev


# ---------------------------------------------------------------- confluent-kafka

def confluent_basic(bootstrap, topic, count):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    deadline = time.time() + 30
    while time.time() < deadline:
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md and md.error is None and len(md.partitions) == 3:
            break
        time.sleep(0.2)
    out(f"T {len(md.partitions)}")
    # Idempotence keeps each partition in produce order through retries.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})

    def done(err, msg):
        if err:
            out(f"E produce: {err}")
        else:
            out(f"P {msg.partition()} {msg.offset()} {msg.key().decode()} {msg.value().decode()}")
    for i in range(count):
        k, v = key_value(i)
        p.produce(topic, key=k, value=v, on_delivery=done)
        p.poll(0)
    p.flush(60)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, part, 0) for part in range(3)])
    n, deadline = 0, time.time() + 60
    while n < count and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                out(f"E consume: {m.error()}")
                continue
            out(f"C {m.partition()} {m.offset()} {m.key().decode()} {m.value().decode()}")
            n += 1
    c.close()
    admin.delete_topics([topic])[topic].result(30)
    out("D")


def confluent_member(bootstrap, topic, group, strategy="range", instance=None):
    from confluent_kafka import Consumer, KafkaException
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "partition.assignment.strategy": strategy,
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500}
    if instance:
        conf["group.instance.id"] = instance
    if os.environ.get("WEIR_RDKAFKA_DEBUG"):
        conf["debug"] = os.environ["WEIR_RDKAFKA_DEBUG"]
    c = Consumer(conf)

    def commit(why):
        # A commit can be refused while the group rebalances (Kafka answers ILLEGAL_GENERATION
        # or REBALANCE_IN_PROGRESS); an application carries on, and the next commit, or the
        # one made when partitions are revoked, covers the same positions.
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            print(f"commit ({why}) refused: {e}", file=sys.stderr, flush=True)

    # Commit what was read before partitions move to another member, as applications do.
    c.subscribe([topic], on_revoke=lambda consumer, parts: commit("revoke"))
    stop = stdin_closed()
    while not stop.is_set():
        msgs = c.consume(1000, 0.2)
        lines = [f"R {m.partition()} {m.offset()} {m.value().decode()}" for m in msgs if not m.error()]
        if lines:
            commit("poll")
        lines.append("A " + ",".join(str(tp.partition) for tp in sorted(c.assignment(), key=lambda t: t.partition)))
        out("\n".join(lines))
    c.close()


# ---------------------------------------------------------------- kafka-python

def kafka_python_basic(bootstrap, topic, count):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=True)
    deadline = time.time() + 30
    parts = None
    while time.time() < deadline:
        parts = p.partitions_for(topic)
        if parts and len(parts) == 3:
            break
        time.sleep(0.2)
    out(f"T {len(parts or [])}")
    futures = []
    for i in range(count):
        k, v = key_value(i)
        futures.append((k, v, p.send(topic, key=k.encode(), value=v.encode())))
    p.flush(60)
    for k, v, f in futures:
        try:
            md = f.get(30)
            out(f"P {md.partition} {md.offset} {k} {v}")
        except Exception as e:  # noqa: BLE001 - reported to the runner as an error line
            out(f"E produce: {e!r}")
    p.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, part) for part in range(3)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    n, deadline = 0, time.time() + 60
    while n < count and time.time() < deadline:
        for ms in c.poll(timeout_ms=500).values():
            for m in ms:
                out(f"C {m.partition} {m.offset} {m.key.decode()} {m.value.decode()}")
                n += 1
    c.close()
    admin.delete_topics([topic])
    admin.close()
    out("D")


def kafka_python_member(bootstrap, topic, group, strategy="range", instance=None):
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500,
                      partition_assignment_strategy=[RangePartitionAssignor])
    stop = stdin_closed()
    while not stop.is_set():
        batches = c.poll(timeout_ms=200)
        lines = [f"R {m.partition} {m.offset} {m.value.decode()}" for ms in batches.values() for m in ms]
        if lines:
            try:
                c.commit()
            except Exception:  # noqa: BLE001 - a rebalance interrupted the commit; the records come again
                pass
        lines.append("A " + ",".join(str(tp.partition) for tp in sorted(c.assignment(), key=lambda t: t.partition)))
        out("\n".join(lines))
    c.close()


# ---------------------------------------------------------------- aiokafka

async def aiokafka_basic(bootstrap, topic, count):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    import asyncio
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=True)
    await p.start()
    deadline = time.time() + 30
    parts = set()
    while time.time() < deadline:
        parts = await p.partitions_for(topic)
        if parts and len(parts) == 3:
            break
        await asyncio.sleep(0.2)
    out(f"T {len(parts or [])}")
    futures = []
    for i in range(count):
        k, v = key_value(i)
        futures.append((k, v, await p.send(topic, key=k.encode(), value=v.encode())))
    for k, v, f in futures:
        try:
            md = await asyncio.wait_for(f, 30)
            out(f"P {md.partition} {md.offset} {k} {v}")
        except Exception as e:  # noqa: BLE001
            out(f"E produce: {e!r}")
    await p.stop()
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    tps = [TopicPartition(topic, part) for part in range(3)]
    c.assign(tps)
    await c.seek_to_beginning(*tps)
    n, deadline = 0, time.time() + 60
    while n < count and time.time() < deadline:
        for ms in (await c.getmany(timeout_ms=500)).values():
            for m in ms:
                out(f"C {m.partition} {m.offset} {m.key.decode()} {m.value.decode()}")
                n += 1
    await c.stop()
    await admin.delete_topics([topic])
    await admin.close()
    out("D")


async def aiokafka_member(bootstrap, topic, group, strategy="range", instance=None):
    import asyncio
    from aiokafka import AIOKafkaConsumer
    kwargs = {}
    if instance:
        kwargs["group_instance_id"] = instance
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500,
                         **kwargs)
    await c.start()
    stop = stdin_closed()
    try:
        while not stop.is_set():
            batches = await c.getmany(timeout_ms=200)
            lines = [f"R {m.partition} {m.offset} {m.value.decode()}" for ms in batches.values() for m in ms]
            if lines:
                try:
                    await c.commit()
                except Exception:  # noqa: BLE001 - a rebalance interrupted the commit; the records come again
                    pass
            lines.append("A " + ",".join(str(tp.partition) for tp in sorted(c.assignment(), key=lambda t: t.partition)))
            out("\n".join(lines))
            await asyncio.sleep(0)
    finally:
        await c.stop()


# ---------------------------------------------------------------- kcat

def kafka_topics(*args):
    import os
    import subprocess
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kafka", "tool")
    subprocess.run([tool, "kafka-topics", *args], check=True, capture_output=True, timeout=120)


def kcat_basic(bootstrap, topic, count):
    import subprocess
    kafka_topics("--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "3")
    meta = subprocess.run(["kcat", "-b", bootstrap, "-L", "-t", topic], capture_output=True, text=True, timeout=30).stdout
    parts = [line for line in meta.splitlines() if line.strip().startswith("partition ")]
    out(f"T {len(parts)}")
    lines = [":".join(key_value(i)) for i in range(count)]
    r = subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-K:"], input="\n".join(lines) + "\n",
                       text=True, capture_output=True, timeout=60)
    if r.returncode != 0:
        out(f"E produce: {r.stderr.strip()[-300:]}")
    else:
        # kcat -P does not report where each record went: "?" leaves that to the read-back.
        out("\n".join(f"P ? ? {k} {v}" for k, v in (l.split(":") for l in lines)))
    r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-o", "beginning", "-f", "C %p %o %k %s\n"],
                       capture_output=True, text=True, timeout=60)
    sys.stdout.write(r.stdout)
    kafka_topics("--bootstrap-server", bootstrap, "--delete", "--topic", topic)
    out("D")


def kcat_member(bootstrap, topic, group, strategy="range", instance=None):
    import ctypes
    import re
    import signal
    import subprocess

    def die_with_parent():  # a kill -9 of this driver must take kcat's group membership with it
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    proc = subprocess.Popen(["kcat", "-b", bootstrap, "-G", group, "-u", "-f", "R %p %o %s\n",
                             "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=200",
                             "-X", f"session.timeout.ms={SESSION_TIMEOUT_MS}", "-X", "heartbeat.interval.ms=500",
                             "-X", f"partition.assignment.strategy={strategy}", topic],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    assigned = []
    lock = threading.Lock()

    def watch_stderr():
        nonlocal assigned
        for line in proc.stderr:
            m = re.search(r"rebalanced .*: (assigned|revoked): (.*)", line)
            if m:
                with lock:
                    parts = sorted(int(x) for x in re.findall(r"\[(\d+)\]", m.group(2)))
                    assigned = parts if m.group(1) == "assigned" else []
                    out("A " + ",".join(map(str, assigned)))
    threading.Thread(target=watch_stderr, daemon=True).start()

    def relay_stdout():
        for line in proc.stdout:
            with lock:
                sys.stdout.write(line)
                sys.stdout.flush()
    threading.Thread(target=relay_stdout, daemon=True).start()
    stop = stdin_closed()
    while not stop.wait(0.2):
        with lock:
            out("A " + ",".join(map(str, assigned)))
    proc.send_signal(signal.SIGTERM)  # kcat commits and leaves the group on SIGTERM
    proc.wait(30)


def main():
    role, client, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if role == "basic":
        args = args[:2] + [int(args[2])]
    fn = {("basic", "confluent-kafka"): confluent_basic, ("member", "confluent-kafka"): confluent_member,
          ("basic", "kafka-python"): kafka_python_basic, ("member", "kafka-python"): kafka_python_member,
          ("basic", "aiokafka"): aiokafka_basic, ("member", "aiokafka"): aiokafka_member,
          ("basic", "kcat"): kcat_basic, ("member", "kcat"): kcat_member}.get((role, client))
    if fn is None:
        sys.exit(f"unknown role or client: {role} {client}")
    try:
        result = fn(*args)
        if hasattr(result, "__await__"):
            import asyncio
            asyncio.run(result)
    except Exception as e:  # noqa: BLE001 - the runner reads the error line
        out(f"E {type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
