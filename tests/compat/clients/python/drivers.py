#!/usr/bin/env python3
"""The Python clients of the compatibility harness: confluent-kafka (librdkafka),
kafka-python and aiokafka, each driving the same two roles as every other client, and
confluent-kafka the transaction roles as the Java and franz-go drivers do.

  drivers.py basic CLIENT BOOTSTRAP TOPIC COUNT
      create TOPIC with 3 partitions, produce COUNT keyed records, read them back from the
      start of every partition, delete TOPIC. Prints "T partitions", "P partition offset key
      value" per acknowledged record, "C partition offset key value" per record read,
      "D" once the topic is deleted, "E message" on an error.
  drivers.py member CLIENT BOOTSTRAP TOPIC GROUP [STRATEGY [INSTANCE]]
      a consumer group member: "R partition offset value" per record, "A p,p,..." for its
      assignment after each poll; commits what it read; leaves the group when stdin closes.
      confluent-kafka also prints "K assign p,p,..." and "K revoke p,p,..." from its
      rebalance callbacks.
  drivers.py pair confluent-kafka BOOTSTRAP TOPIC GROUP [INSTANCE]
      two members of GROUP in one process, subscribed at the same moment (static, as
      INSTANCE-0 and INSTANCE-1, when INSTANCE is given), polled in turn: their lines as a
      member's, each after "M index ".

  drivers.py txn-commit|txn-abort|txn-open|txn-fence confluent-kafka BOOTSTRAP TOPIC COUNT
  drivers.py txn-ctp confluent-kafka BOOTSTRAP INPUT OUTPUT GROUP COUNT
      the transaction scenarios, confluent-kafka only, on 3-partition topics the runner
      created; see "confluent-kafka transactions" below for each and the lines it prints.

  drivers.py produce-batch confluent-kafka BOOTSTRAP TOPIC SPEC
      one batch to partition 0 of TOPIC, a record per letter of SPEC (see PRODUCE_BATCH_SPEC),
      then "O index offset" per record acknowledged and "F index ERROR message" per record
      that failed, in index order.

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


def confluent_member_conf(bootstrap, group, strategy="range", instance=None):
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    if os.environ.get("COMPAT_GROUP_PROTOCOL") == "consumer":
        # The consumer protocol (KIP-848): the broker assigns and sets the session and
        # heartbeat times; a topic starting with "^" is a regex the broker resolves.
        conf["group.protocol"] = "consumer"
        if os.environ.get("COMPAT_GROUP_REMOTE_ASSIGNOR"):
            conf["group.remote.assignor"] = os.environ["COMPAT_GROUP_REMOTE_ASSIGNOR"]
    else:
        conf.update({"partition.assignment.strategy": strategy, "session.timeout.ms": SESSION_TIMEOUT_MS,
                     "heartbeat.interval.ms": 500})
    if instance:
        conf["group.instance.id"] = instance
    if os.environ.get("WEIR_RDKAFKA_DEBUG"):
        conf["debug"] = os.environ["WEIR_RDKAFKA_DEBUG"]
    return conf


class ConfluentMember:
    """One confluent-kafka group member; `step` polls once and returns its lines."""

    def __init__(self, conf, topic):
        from confluent_kafka import Consumer
        self.c = Consumer(conf)
        self.lines = []

        def parts(ps):
            return ",".join(str(tp.partition) for tp in sorted(ps, key=lambda t: t.partition))

        def on_assign(consumer, ps):
            self.lines.append(f"K assign {parts(ps)}")

        def on_revoke(consumer, ps):
            self.lines.append(f"K revoke {parts(ps)}")
            # Commit what was read before partitions move to another member, as applications do.
            self.commit("revoke")

        self.subscribe = lambda: self.c.subscribe(topic.split(","), on_assign=on_assign, on_revoke=on_revoke)

    def commit(self, why):
        # A commit can be refused while the group rebalances (Kafka answers ILLEGAL_GENERATION
        # or REBALANCE_IN_PROGRESS); an application carries on, and the next commit, or the
        # one made when partitions are revoked, covers the same positions.
        from confluent_kafka import KafkaException
        try:
            self.c.commit(asynchronous=False)
        except KafkaException as e:
            print(f"commit ({why}) refused: {e}", file=sys.stderr, flush=True)

    def step(self, timeout_s):
        msgs = self.c.consume(1000, timeout_s)
        self.lines += [f"R {m.partition()} {m.offset()} {m.value().decode()}" for m in msgs if not m.error()]
        if any(not m.error() for m in msgs):
            self.commit("poll")
        self.lines.append("A " + ",".join(str(tp.partition) for tp in
                                          sorted(self.c.assignment(), key=lambda t: t.partition)))
        lines, self.lines = self.lines, []
        return lines


def confluent_member(bootstrap, topic, group, strategy="range", instance=None):
    m = ConfluentMember(confluent_member_conf(bootstrap, group, strategy, instance), topic)
    m.subscribe()
    stop = stdin_closed()
    while not stop.is_set():
        out("\n".join(m.step(0.2)))
    m.c.close()


def confluent_pair(bootstrap, topic, group, instance=None):
    members = [ConfluentMember(confluent_member_conf(bootstrap, group, "range",
                                                     f"{instance}-{i}" if instance else None), topic)
               for i in range(2)]
    # Both find the group's coordinator first, then subscribe back to back: their JoinGroups
    # leave together.
    for m in members:
        m.c.list_topics(timeout=10)
    time.sleep(1)
    for m in members:
        m.subscribe()
    stop = stdin_closed()
    while not stop.is_set():
        out("\n".join(f"M {i} {line}" for i, m in enumerate(members) for line in m.step(0.1)))
    for m in members:
        m.c.close()


# The records of a produce-batch role, one letter each: k a keyed record, n a record without
# a key, o a keyed record two hours old, f a keyed record two hours ahead, L a keyed record
# with a 2,000-byte value. The Java driver reads the same letters.
PRODUCE_BATCH_SPEC = "knofL"
HOUR_MS = 3_600_000


def confluent_produce_batch(bootstrap, topic, spec):
    """Every record of SPEC in one batch (a long linger, no idempotence, so a refused batch
    is not retried), then what each record's delivery report said."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 500, "acks": "all", "enable.idempotence": False})
    now, outcome = int(time.time() * 1000), {}
    for i, letter in enumerate(spec):
        key = None if letter == "n" else f"k{i}"
        value = "x" * 2000 if letter == "L" else f"v{i}"
        ts = {"o": now - 2 * HOUR_MS, "f": now + 2 * HOUR_MS}.get(letter, now)
        p.produce(topic, key=key, value=value, partition=0, timestamp=ts,
                  on_delivery=lambda err, msg, i=i: outcome.__setitem__(
                      i, f"F {i} {err.name()} {err.str()}" if err else f"O {i} {msg.offset()}"))
    p.flush(60)
    out("\n".join(outcome.get(i, f"F {i} NO_REPORT") for i in range(len(spec))))


# ---------------------------------------------------------------- confluent-kafka transactions
#
# The same roles, and the same lines, as the Java driver's (clients/java/Scenarios.java):
# "P partition offset key value" per record a transactional producer had acknowledged,
# "R reader partition offset key value" per record read (reader: committed, uncommitted or
# after), "L partition lso hw" while a transaction is open, "X event detail" for what a
# transaction call returned, "E message" on an error.

TXN_TIMEOUT_MS = 10000
TXN_CALL_TIMEOUT_S = 30


def confluent_txn_producer(bootstrap, transactional_id):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "enable.idempotence": True,
            "acks": "all", "linger.ms": 5, "transaction.timeout.ms": TXN_TIMEOUT_MS}
    if os.environ.get("WEIR_RDKAFKA_DEBUG"):
        conf["debug"] = os.environ["WEIR_RDKAFKA_DEBUG"]
    return Producer(conf)


def confluent_error_name(e):
    """A librdkafka error as "NAME", with "fatal" or "abortable" after it when it is."""
    from confluent_kafka import KafkaError
    err = e.args[0] if not isinstance(e, KafkaError) and e.args and isinstance(e.args[0], KafkaError) else e
    if not isinstance(err, KafkaError):
        return type(e).__name__
    return " ".join([err.name()] + (["fatal"] if err.fatal() else []) + (["abortable"] if err.txn_requires_abort() else []))


class Acked:
    """Delivery reports as "P" lines, kept until printed (the callbacks run inside poll and flush)."""

    def __init__(self):
        self.lines = []

    def __call__(self, err, msg):
        if err:
            self.lines.append(f"E produce {msg.key().decode()} {msg.value().decode()}: {confluent_error_name(err)}")
        else:
            self.lines.append(f"P {msg.partition()} {msg.offset()} {msg.key().decode()} {msg.value().decode()}")

    def print(self):
        out("\n".join(self.lines))
        self.lines = []


def confluent_produce(p, topic, key, value, on_delivery):
    while True:
        try:
            p.produce(topic, key=key, value=value, on_delivery=on_delivery)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)


def confluent_send_all(p, topic, letter, count, acked):
    for i in range(count):
        confluent_produce(p, topic, f"k{i % 30}", f"{letter}{i}", acked)


def confluent_read(bootstrap, topic, reader, isolation, want):
    """Reads TOPIC from the start until WANT records arrived (30 s at most), then one second
    more so a record that should not be there has its chance to show."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-{reader}", "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(3)])
    lines, n, deadline, extra_until = [], 0, time.time() + 30, None
    while time.time() < min(deadline, extra_until or deadline):
        for m in c.consume(1000, 0.2):
            if m.error():
                lines.append(f"E consume: {m.error()}")
                continue
            lines.append(f"R {reader} {m.partition()} {m.offset()} {m.key().decode()} {m.value().decode()}")
            n += 1
        if n >= want and extra_until is None:
            extra_until = time.time() + 1
    c.close()
    out("\n".join(lines))


def confluent_txn_commit(bootstrap, topic, count):
    """COUNT records in five committed transactions, read back with read_committed."""
    p, acked = confluent_txn_producer(bootstrap, f"{topic}-tx"), Acked()
    p.init_transactions(TXN_CALL_TIMEOUT_S)
    per = max(1, count // 5)
    for start in range(0, count, per):
        p.begin_transaction()
        for i in range(start, min(count, start + per)):
            confluent_produce(p, topic, f"k{i % 30}", f"v{i}", acked)
        p.commit_transaction(TXN_CALL_TIMEOUT_S)
    acked.print()
    confluent_read(bootstrap, topic, "committed", "read_committed", count)


def confluent_txn_abort(bootstrap, topic, count):
    """Committed "a", aborted "b" (flushed to the log first), committed "c": COUNT/3 each."""
    n = count // 3
    p, acked = confluent_txn_producer(bootstrap, f"{topic}-tx"), Acked()
    p.init_transactions(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    confluent_send_all(p, topic, "a", n, acked)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    confluent_send_all(p, topic, "b", n, acked)
    p.flush(TXN_CALL_TIMEOUT_S)
    p.abort_transaction(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    confluent_send_all(p, topic, "c", n, acked)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    acked.print()
    confluent_read(bootstrap, topic, "committed", "read_committed", 2 * n)
    confluent_read(bootstrap, topic, "uncommitted", "read_uncommitted", 3 * n)


def confluent_txn_open(bootstrap, topic, count):
    """Committed "a", then "b" flushed in a transaction left open while the end offsets are
    listed at both isolation levels and both readers read; then it commits."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec
    n = count // 2
    p, acked = confluent_txn_producer(bootstrap, f"{topic}-tx"), Acked()
    p.init_transactions(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    confluent_send_all(p, topic, "a", n, acked)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    confluent_send_all(p, topic, "b", n, acked)
    p.flush(TXN_CALL_TIMEOUT_S)
    acked.print()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    latest = {TopicPartition(topic, part): OffsetSpec.latest() for part in range(3)}
    ends = {}
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        for tp, f in admin.list_offsets(latest, isolation_level=level).items():
            ends.setdefault(tp.partition, []).append(f.result(10).offset)
    out("\n".join(f"L {part} {lso} {hw}" for part, (lso, hw) in sorted(ends.items())))
    confluent_read(bootstrap, topic, "committed", "read_committed", n)
    confluent_read(bootstrap, topic, "uncommitted", "read_uncommitted", 2 * n)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    out("X commit ok")
    confluent_read(bootstrap, topic, "after", "read_committed", 2 * n)


def confluent_txn_fence(bootstrap, topic, count):
    """A first producer leaves "f" in an open transaction; a second with the same
    transactional.id initialises (fencing the first) and commits "g". The first then tries
    one more send and a commit, and an abort if the commit failed."""
    from confluent_kafka import KafkaException
    n = count // 2
    first, acked = confluent_txn_producer(bootstrap, f"{topic}-tx"), Acked()
    first.init_transactions(TXN_CALL_TIMEOUT_S)
    first.begin_transaction()
    confluent_send_all(first, topic, "f", n, acked)
    first.flush(TXN_CALL_TIMEOUT_S)
    second = confluent_txn_producer(bootstrap, f"{topic}-tx")
    second.init_transactions(TXN_CALL_TIMEOUT_S)
    out("X second-init ok")
    try:
        # confluent-kafka raises the fenced producer's fatal error out of flush; a delivery
        # callback then run would meet that raised exception, so the late record has none.
        first.produce(topic, key="k0", value="late")
        left = first.flush(TXN_CALL_TIMEOUT_S)
        out("X send " + ("ok" if left == 0 else "undelivered"))
    except KafkaException as e:
        out(f"X send {confluent_error_name(e)}")
    for call in ("commit", "abort"):
        try:
            (first.commit_transaction if call == "commit" else first.abort_transaction)(TXN_CALL_TIMEOUT_S)
            out(f"X {call} ok")
            break  # an abort follows only a failed commit
        except KafkaException as e:
            out(f"X {call} {confluent_error_name(e)}")
    second.begin_transaction()
    confluent_send_all(second, topic, "g", n, acked)
    second.commit_transaction(TXN_CALL_TIMEOUT_S)
    acked.print()
    confluent_read(bootstrap, topic, "committed", "read_committed", n)
    confluent_read(bootstrap, topic, "uncommitted", "read_uncommitted", 2 * n)


def confluent_txn_ctp(bootstrap, source, sink, group, count):
    """Reads SOURCE (COUNT records) in GROUP and writes "t-" + value to SINK, each batch in a
    transaction that also commits the group's offsets; the third is aborted after its records
    were flushed, and its input read again. Ends when every input offset is committed."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    p = confluent_txn_producer(bootstrap, f"{group}-tx")
    p.init_transactions(TXN_CALL_TIMEOUT_S)
    c.subscribe([source])
    done, batches, aborted, deadline = {}, 0, 0, time.time() + 90

    def delivered(err, msg):
        if err:
            out(f"E produce: {confluent_error_name(err)}")
    while sum(done.values()) < count and time.time() < deadline:
        msgs = [m for m in c.consume(100, 0.2) if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        firsts, nexts = {}, {}
        for m in msgs:
            confluent_produce(p, sink, m.key(), b"t-" + m.value(), delivered)
            firsts.setdefault(m.partition(), m.offset())
            nexts[m.partition()] = m.offset() + 1
        batches += 1
        if batches == 3:
            p.flush(TXN_CALL_TIMEOUT_S)
            p.abort_transaction(TXN_CALL_TIMEOUT_S)
            aborted += len(msgs)
            for part, offset in firsts.items():
                c.seek(TopicPartition(source, part, offset))
            out(f"X aborted {len(msgs)}")
            continue
        p.send_offsets_to_transaction([TopicPartition(source, part, offset) for part, offset in nexts.items()],
                                      c.consumer_group_metadata(), TXN_CALL_TIMEOUT_S)
        p.commit_transaction(TXN_CALL_TIMEOUT_S)
        done.update(nexts)
        out(f"X committed {len(msgs)}")
    c.close()
    confluent_read(bootstrap, sink, "committed", "read_committed", count)
    confluent_read(bootstrap, sink, "uncommitted", "read_uncommitted", count + aborted)


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
    if role not in ("member", "pair", "produce-batch"):  # every other role ends with a record count
        args = args[:-1] + [int(args[-1])]
    fn = {("basic", "confluent-kafka"): confluent_basic, ("member", "confluent-kafka"): confluent_member,
          ("pair", "confluent-kafka"): confluent_pair,
          ("txn-commit", "confluent-kafka"): confluent_txn_commit, ("txn-abort", "confluent-kafka"): confluent_txn_abort,
          ("txn-open", "confluent-kafka"): confluent_txn_open, ("txn-fence", "confluent-kafka"): confluent_txn_fence,
          ("txn-ctp", "confluent-kafka"): confluent_txn_ctp,
          ("produce-batch", "confluent-kafka"): confluent_produce_batch,
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
