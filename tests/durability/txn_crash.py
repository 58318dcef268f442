#!/usr/bin/env python3
"""Transactional crash test: with --fsync always, kill -9 never breaks a transaction.

One weir broker runs on a free loopback port with one data directory for the whole test.
Against it, in their own processes, run:

- PRODUCERS transactional producers (confluent-kafka, transactional ids txn-crash-p0...),
  each in a loop: begin, send 1..RECORDS_PER_TXN_MAX records to random partitions of two
  topics, then commit or abort at random. A record's value is "producer:txn:record:count",
  so the checker knows exactly what each transaction wrote. Each producer keeps a journal of
  its own view: a commit that returned is "committed", an abort that returned is "aborted",
  a commit that failed or was cut off by a kill is "unknown" (it may end either way, but all
  or nothing), and a transaction that never asked to commit must not be visible. Now and
  then the application crashes (its process exits at once) inside a transaction or right
  after asking to commit; it is started again, and the new instance with the same
  transactional id settles what the old one left.
- One consume-transform-produce worker: a member of group txn-crash-ctp reading ctp-in
  (fed by this script before every kill) with read_committed, writing
  "in_partition:in_offset:txn" to ctp-out and sending the group's offsets in the same
  transaction (send_offsets_to_transaction); some of its transactions are aborted and their
  input read again from the group's committed offsets, and it crashes now and then too
  (a static member, so its next instance takes its place at once).

The broker is killed with SIGKILL ROUNDS times at random moments (mostly once every worker
has made progress since the last restart, sometimes right after a restart while clients
reconnect and recover) and restarted on the same data directory; clients reconnect, and a
producer whose transaction failed aborts it or is created again with the same transactional
id (init_transactions fences and ends the old one).

At the end the workers stop, and the checker reads every partition from the beginning to
the end with read_committed (to the last stable offset, which must reach the high watermark
once nothing is open) and with read_uncommitted, and requires:
- exactly the records of committed transactions, each once, in order per partition and
  producer; none of an aborted or never-committed transaction; every committed transaction
  complete; every unknown one all or nothing; a committed record at the offset its delivery
  report gave;
- the read_uncommitted read holds the read_committed one, and every record whose delivery
  was reported (acks=all), at the reported offset;
- the group's committed offsets (OffsetFetch with require_stable) cover exactly the input
  that the committed output holds: no input record twice in it, none missing.

Prints one line per round and a final summary; exits 1 on any violation (each printed) or
when a bound is exceeded (a worker that makes no progress, a broker that does not start, the
whole test's time budget), never hangs.

Usage: txn_crash.py WEIR_BIN [ROUNDS] [SEED]
  WEIR_TXN_CRASH_FSYNC  weir's --fsync policy (always). A kill -9 leaves the kernel's page
                        cache behind, so even "never" loses nothing here: this test kills
                        the process, it does not cut the power.
  WEIR_TXN_CRASH_KEEP   keep the data directory, weir.log and the journals after a pass too
  WEIR_TXN_CRASH_DEBUG  librdkafka debug contexts for the workers (eos,protocol,...)
"""
import faulthandler
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

PRODUCERS = 3
TOPICS = {"txa": 3, "txb": 2}  # the producers' topics and their partition counts
CTP_IN, CTP_OUT, CTP_PARTITIONS = "ctp-in", "ctp-out", 2
CTP_GROUP = "txn-crash-ctp"
CTP_FEED_PER_PARTITION = 100  # input records added to each ctp-in partition before every kill (about
# what the worker gets through in a round, so that no backlog starves one partition)
CTP_BATCH_MAX = 40  # input records read into one consume-transform-produce transaction
RECORDS_PER_TXN_MAX = 12
COMMIT_PROBABILITY = 0.7
CTP_COMMIT_PROBABILITY = 0.85
FLUSH_BEFORE_END_PROBABILITY = 0.5  # records reach the log before the commit or abort is asked
# The application crashes now and then: its process exits at once (os._exit, so librdkafka
# sends nothing more) inside a transaction, or right after asking to commit (with a commit
# timeout of a few ms); the runner starts it again, and the new instance's init_transactions
# settles what the old one left.
CRASH_PROBABILITY = 0.01  # a transaction's chance to see its producer crash, in it
CRASH_IN_COMMIT_PROBABILITY = 0.02  # and in its commit
CTP_CRASH_PROBABILITY = 0.03  # the same for the consume-transform-produce worker, whose
CTP_CRASH_IN_COMMIT_PROBABILITY = 0.06  # transactions are fewer
CRASHED_COMMIT_TIMEOUT_MAX_S = 0.05
CRASH_EXIT_CODE = 75  # a worker that crashed on purpose; any other non-zero exit is a failure
# How a round picks its moment to kill, once the previous restart's clients are back:
EARLY_KILL_PROBABILITY = 0.2  # right after a restart, while clients reconnect and recover
EARLY_KILL_DELAY_MAX_S = 0.5
IN_COMMIT_KILL_PROBABILITY = 0.3  # the moment a worker has asked to commit and not heard back
IN_COMMIT_WAIT_MAX_S = 3.0
KILL_DELAY_MAX_S = 2.0  # otherwise at random, after every worker committed since the restart
DOWNTIME_MAX_S = 0.3  # between the kill and the restart

TXN_TIMEOUT_MS = 10000  # the coordinator aborts a transaction left open this long
CALL_TIMEOUT_S = 10  # one init/commit/abort/send_offsets/flush call
CALL_RETRY_S = 40  # retrying one retriable transaction call, in all
START_TIMEOUT_S = 20  # weir listening after a start
PROGRESS_TIMEOUT_S = 40  # every worker committed a transaction since the restart
STOP_TIMEOUT_S = 90  # workers ending their last transaction and exiting
STABLE_TIMEOUT_S = 2 * TXN_TIMEOUT_MS / 1000  # last stable offset reaching the high watermark
READ_TIMEOUT_S = 60  # one full read of every partition
WORKER_LIFETIME_S = 4 * 3600  # the last resort; a worker also ends when its parent is gone
VIOLATIONS_SHOWN_MAX = 20


def time_budget_s(rounds):
    """The whole test's bound: start-up, the rounds (2 to 4 s each on a 2-core machine, so
    10 rounds take about 30 s and 100 about 200 s), the final stop and check, with room for
    a slower machine."""
    return 120 + 15 * rounds


# ---------------------------------------------------------------- workers (own processes)

class Journal:
    """A worker's own view, one line an event with the wall-clock time last, flushed as
    written (workers are never killed; only the broker is)."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def write(self, line):
        self.f.write(f"{line} {time.time():.3f}\n")
        self.f.flush()


class Lifeline:
    """A worker goes on until the stop file exists, its parent is gone, or its lifetime ends."""

    def __init__(self, stop_path):
        self.stop_path = stop_path
        self.parent = os.getppid()
        self.deadline = time.time() + WORKER_LIFETIME_S

    def alive(self):
        return not os.path.exists(self.stop_path) and os.getppid() == self.parent and time.time() < self.deadline


# What a client call may raise: KafkaException, BufferError from a full queue, and, when a
# fatal error is raised out of flush() while a delivery callback still runs, the SystemError
# that confluent-kafka then reports. Each means "this producer cannot go on as it was".
CALL_ERRORS = (KafkaException, BufferError, SystemError)


def kafka_error(e):
    return e.args[0] if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError) else None


def error_name(e):
    err = kafka_error(e)
    if err is None:
        return type(e).__name__
    return "/".join([err.name()] + (["fatal"] if err.fatal() else []) + (["retriable"] if err.retriable() else [])
                    + (["abortable"] if err.txn_requires_abort() else []))


def client_conf(conf):
    """A worker's librdkafka settings: no re-bootstrap, and WEIR_TXN_CRASH_DEBUG=eos,protocol,...
    turns on librdkafka's debug log (into the worker's .stderr).

    With one broker, every kill makes all known brokers unavailable, so librdkafka (2.10 on)
    re-bootstraps and decommissions the broker it had learned; a group coordinator cached as
    that decommissioned broker then leaves send_offsets_to_transaction waiting forever, past
    its timeout (librdkafka issues #5511 and #5456). Re-bootstrapping to the same single
    address gains nothing, so it is off."""
    conf = dict(conf, **{"metadata.recovery.strategy": "none"})
    if os.environ.get("WEIR_TXN_CRASH_DEBUG"):
        conf = dict(conf, debug=os.environ["WEIR_TXN_CRASH_DEBUG"], log_level=7)
    return conf


def txn_producer(bootstrap, transactional_id):
    return Producer(client_conf({
        "bootstrap.servers": bootstrap, "transactional.id": transactional_id, "enable.idempotence": True,
        "acks": "all", "linger.ms": 2, "transaction.timeout.ms": TXN_TIMEOUT_MS, "message.timeout.ms": TXN_TIMEOUT_MS,
        "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 300, "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 300, "log_level": 3}))


def send(p, topic, partition, value, on_delivery):
    """One produce; a full local queue is waited on, boundedly."""
    deadline = time.time() + CALL_TIMEOUT_S
    while True:
        try:
            p.produce(topic, value=value.encode(), key=value.split(":", 1)[0].encode(), partition=partition,
                      on_delivery=on_delivery)
            break
        except BufferError:
            if time.time() > deadline:
                raise
            p.poll(0.05)
    p.poll(0)


def retried(j, what, call):
    """Runs a transaction call, again while it fails retriably (bounded): (True, None) once it
    returned, else (False, the last KafkaError or None)."""
    deadline = time.time() + CALL_RETRY_S
    while True:
        try:
            call()
            return True, None
        except CALL_ERRORS as e:
            err = kafka_error(e)
            j.write(f"W {what} {error_name(e)}")
            # _CONFLICT (another call still "in progress" after a fatal error) never clears.
            if err is None or not err.retriable() or err.fatal() or err.txn_requires_abort() \
                    or err.code() == KafkaError._CONFLICT or time.time() > deadline:
                return False, err
            time.sleep(0.05)


def discarded(p):
    """Drops a producer that failed fatally (its transaction is left to the next instance)."""
    del p
    return None


class TxnClient:
    """A transactional producer that is created again whenever it cannot go on."""

    def __init__(self, bootstrap, transactional_id, j):
        self.bootstrap, self.transactional_id, self.j = bootstrap, transactional_id, j
        self.p, self.ready = None, False

    def ensure(self):
        """True once a producer has initialised its transactions."""
        if self.p is None:
            self.p, self.ready = txn_producer(self.bootstrap, self.transactional_id), False
        if not self.ready:
            if retried(self.j, "init", lambda: self.p.init_transactions(CALL_TIMEOUT_S))[0]:
                self.ready = True
                self.j.write("I")
            else:
                self.p = discarded(self.p)
                time.sleep(0.1)
        return self.ready

    def settle(self):
        """At the end: a dropped producer's transaction would stay open until its timeout, so
        a new instance initialises (which fences and aborts it), boundedly."""
        deadline = time.time() + CALL_RETRY_S
        while not self.ensure() and time.time() < deadline:
            pass

    def end_after(self, txn, e):
        """Ends TXN after a call in it raised E: a fatally failed producer is dropped, any
        other aborts."""
        err = kafka_error(e)
        if err is not None and err.fatal():
            self.drop(txn)
        else:
            self.abort(txn)

    def abort(self, txn):
        """Aborts TXN; when that fails, the producer is dropped (the next one fences it)."""
        if retried(self.j, f"abort {txn}", lambda: self.p.abort_transaction(CALL_TIMEOUT_S))[0]:
            self.j.write(f"A {txn}")
        else:
            self.drop(txn)

    def commit(self, txn):
        """Commits TXN; when that fails with an abortable error, aborts it, else (fatal, or
        retries exhausted) drops the producer. Either way the checker takes its outcome as
        unknown: the commit was asked."""
        self.j.write(f"C {txn}")
        ok, err = retried(self.j, f"commit {txn}", lambda: self.p.commit_transaction(CALL_TIMEOUT_S))
        if ok:
            self.j.write(f"OK {txn}")
            return True
        if err is not None and err.txn_requires_abort() and not err.fatal():
            self.abort(txn)
        else:
            self.drop(txn)
        return False

    def commit_or_crash(self, txn, timeout_s):
        """Asks to commit TXN; the process crashes unless the answer came within TIMEOUT_S."""
        self.j.write(f"C {txn}")
        try:
            self.p.commit_transaction(timeout_s)
            self.j.write(f"OK {txn}")
            return True
        except CALL_ERRORS as e:
            self.j.write(f"W commit {txn} {error_name(e)}")
            crash(self.j, txn)

    def drop(self, txn):
        self.j.write(f"R {txn}")
        self.p, self.ready = discarded(self.p), False


def crash(j, txn):
    """The application dies in TXN: no destroy, no flush, nothing more sent. (Dropping the
    producer in the process instead can trip librdkafka's assertion txn_req_cnt > 0 in
    rd_kafka_txn_handle_AddPartitionsToTxn when an AddPartitionsToTxn is in flight.)"""
    j.write(f"R {txn} crash")
    os._exit(CRASH_EXIT_CODE)


def end_transaction(client, txn, commit, rng, crash_probability, crash_in_commit_probability):
    """Ends TXN as planned, or now and then crashes in it or in its commit; True when it is
    known committed."""
    die = rng.random()
    if die < crash_probability:
        crash(client.j, txn)
    if commit and die < crash_probability + crash_in_commit_probability:
        return client.commit_or_crash(txn, rng.uniform(0.001, CRASHED_COMMIT_TIMEOUT_MAX_S))
    if commit:
        return client.commit(txn)
    client.abort(txn)
    return False


def last_txn(journal_path):
    """The last transaction number a worker's earlier instances began (0 if none)."""
    last = 0
    if os.path.exists(journal_path):
        with open(journal_path) as f:
            for line in f:
                if line.startswith("B "):
                    last = max(last, int(line.split()[1]))
    return last



def producer_worker(bootstrap, index, journal_path, stop_path, seed):
    """Journal lines: "B txn count plan", "C txn" (commit asked), "OK txn" (commit returned),
    "A txn" (abort returned), "R txn [crash]" (producer dropped, or the process crashed),
    "D value topic partition offset" (delivery report), "I" (initialised), "W what error"
    (a failed call); each ends with the time it was written."""
    txn = last_txn(journal_path)  # an instance started again after a crash goes on numbering
    rng = random.Random(f"{seed}/{txn}")
    j = Journal(journal_path)
    life = Lifeline(stop_path)
    client = TxnClient(bootstrap, f"txn-crash-p{index}", j)
    partitions = [(t, p) for t, n in sorted(TOPICS.items()) for p in range(n)]

    def delivered(err, msg):
        if err is None:
            j.write(f"D {msg.value().decode()} {msg.topic()} {msg.partition()} {msg.offset()}")

    while life.alive():
        if not client.ensure():
            continue
        txn += 1
        count = rng.randint(1, RECORDS_PER_TXN_MAX)
        commit = rng.random() < COMMIT_PROBABILITY
        j.write(f"B {txn} {count} {'commit' if commit else 'abort'}")
        try:
            client.p.begin_transaction()
            for r in range(count):
                topic, partition = rng.choice(partitions)
                send(client.p, topic, partition, f"{index}:{txn}:{r}:{count}", delivered)
            if rng.random() < FLUSH_BEFORE_END_PROBABILITY:
                client.p.flush(CALL_TIMEOUT_S)
        except CALL_ERRORS as e:
            j.write(f"W send {txn} {error_name(e)}")
            client.end_after(txn, e)
            continue
        end_transaction(client, txn, commit, rng, CRASH_PROBABILITY, CRASH_IN_COMMIT_PROBABILITY)
    client.settle()
    sys.exit(0)


def ctp_worker(bootstrap, journal_path, stop_path, seed):
    """Journal lines as the producers', with "N txn p:next,p:next" naming the input offsets
    the transaction commits for the group, and "S p:offset,..." for a rewind to the group's
    committed offsets."""
    txn = last_txn(journal_path)  # an instance started again after a crash goes on numbering
    rng = random.Random(f"{seed}/{txn}")
    j = Journal(journal_path)
    life = Lifeline(stop_path)
    client = TxnClient(bootstrap, "txn-crash-ctp", j)
    c = Consumer(client_conf({
        "bootstrap.servers": bootstrap, "group.id": CTP_GROUP, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed", "session.timeout.ms": 6000,
        # Static membership: an instance started after a crash takes the crashed one's place
        # at once instead of waiting out its session.
        "group.instance.id": "txn-crash-ctp-0",
        "heartbeat.interval.ms": 500, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 300,
        "retry.backoff.ms": 50, "log_level": 3}))
    c.subscribe([CTP_IN])
    rewind = False

    def rewound():
        """Sets every assigned partition's position to the group's committed offset (the
        consumer's read_committed OffsetFetch asks for stable offsets)."""
        try:
            assigned = c.assignment()
            if not assigned:
                return True  # an assignment to come starts from the committed offsets anyway
            got = c.committed(assigned, CALL_TIMEOUT_S)
            if any(tp.error for tp in got):
                j.write(f"W committed {[str(tp.error) for tp in got if tp.error]}")
                return False
            for tp in got:
                c.seek(TopicPartition(CTP_IN, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            j.write("S " + ",".join(f"{tp.partition}:{tp.offset}" for tp in got))
            return True
        except KafkaException as e:
            j.write(f"W rewind {error_name(e)}")
            return False

    while life.alive():
        if not client.ensure():
            continue
        if rewind:
            rewind = not rewound()
            if rewind:
                time.sleep(0.1)
                continue
        msgs = [m for m in c.consume(rng.randint(1, CTP_BATCH_MAX), 0.2) if m.error() is None]
        if not msgs:
            continue
        txn += 1
        commit = rng.random() < CTP_COMMIT_PROBABILITY
        j.write(f"B {txn} {len(msgs)} {'commit' if commit else 'abort'}")
        nexts = {}
        try:
            client.p.begin_transaction()
            for m in msgs:
                send(client.p, CTP_OUT, m.partition(), f"{m.partition()}:{m.offset()}:{txn}", None)
                nexts[m.partition()] = m.offset() + 1
            if rng.random() < FLUSH_BEFORE_END_PROBABILITY:
                client.p.flush(CALL_TIMEOUT_S)
            if commit:
                client.p.send_offsets_to_transaction(
                    [TopicPartition(CTP_IN, part, offset) for part, offset in sorted(nexts.items())],
                    c.consumer_group_metadata(), CALL_TIMEOUT_S)
        except CALL_ERRORS as e:
            j.write(f"W send {txn} {error_name(e)}")
            client.end_after(txn, e)
            rewind = True
            continue
        if commit:
            j.write(f"N {txn} " + ",".join(f"{part}:{offset}" for part, offset in sorted(nexts.items())))
        if not end_transaction(client, txn, commit, rng, CTP_CRASH_PROBABILITY, CTP_CRASH_IN_COMMIT_PROBABILITY):
            rewind = True  # after the next init, which settles an abandoned transaction
    client.settle()
    c.close()
    sys.exit(0)


# ---------------------------------------------------------------- the broker

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """weir on one port and one data directory; each start appends to one log."""

    def __init__(self, bin_path, root, fsync):
        self.bin, self.port, self.fsync = bin_path, free_port(), fsync
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = os.path.join(root, "data")
        self.log_path = os.path.join(root, "weir.log")
        self.proc = None

    def start(self):
        began = time.time()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.bin, "serve", "--listen", self.bootstrap, "--data-dir", self.data_dir, "--fsync", self.fsync,
                 "--group-initial-rebalance-delay-ms", "0", "--http-listen", "off"], stdout=log, stderr=subprocess.STDOUT)
        while time.time() < began + START_TIMEOUT_S:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return time.time() - began
            except OSError:
                if self.proc.poll() is not None:
                    raise Failure(f"weir exited with {self.proc.returncode} while starting; log tail:\n"
                                  + self.log_tail())
                time.sleep(0.02)
        raise Failure(f"weir did not listen within {START_TIMEOUT_S} s of a start; log tail:\n" + self.log_tail())

    def kill9(self):
        if self.proc.poll() is not None:
            raise Failure(f"weir exited by itself with {self.proc.returncode} before the kill; log tail:\n"
                          + self.log_tail())
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def panics(self):
        with open(self.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if "panicked" in line]


class Failure(Exception):
    """A bound exceeded or something that stops the test from running on."""


class OutOfTime(Failure):
    pass


# ---------------------------------------------------------------- journals

class ProducerView:
    """What one producer's journal says: per transaction its record count and outcome."""

    def __init__(self):
        self.count = {}  # txn -> records
        self.asked = set()  # commit asked
        self.committed = set()  # commit returned
        self.aborted = set()  # abort returned (after a failed commit too)
        self.dropped = set()  # the producer was dropped during it
        self.delivered = {}  # value -> (topic, partition, offset)
        self.nexts = {}  # ctp only: txn -> {input partition: next offset}

    def outcome(self, txn):
        if txn in self.committed:
            return "committed"
        if txn in self.asked:
            return "unknown"
        if txn in self.aborted:
            return "aborted"
        return "never-committed"

    def tally(self):
        """(committed, aborted, unknown) transactions that have ended, as this journal says."""
        last = max(self.count, default=0)
        unknown = {t for t in self.asked - self.committed if t < last or t in self.aborted or t in self.dropped}
        return len(self.committed), len(self.aborted - self.asked), len(unknown)


class JournalReader:
    """Follows one journal file, reading only what was appended since the last update."""

    def __init__(self, path):
        self.path, self.offset, self.view = path, 0, ProducerView()
        self.last_kind = None  # of the last transaction event: B, C, OK, A or R

    def update(self):
        if not os.path.exists(self.path):
            return self.view
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while True:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # nothing more, or a line still being written
                self.offset += len(line)
                parts = line.decode().split()
                self.apply(parts)
                if parts and parts[0] in ("B", "C", "OK", "A", "R"):
                    self.last_kind = parts[0]
        return self.view

    def apply(self, parts):
        view, kind = self.view, parts[0] if parts else ""
        if kind == "B":
            view.count[int(parts[1])] = int(parts[2])
        elif kind == "C":
            view.asked.add(int(parts[1]))
        elif kind == "OK":
            view.committed.add(int(parts[1]))
        elif kind == "A":
            view.aborted.add(int(parts[1]))
        elif kind == "R":
            view.dropped.add(int(parts[1]))
        elif kind == "D":
            view.delivered[parts[1]] = (parts[2], int(parts[3]), int(parts[4]))
        elif kind == "N":
            view.nexts[int(parts[1])] = {int(a): int(b) for a, b in (x.split(":") for x in parts[2].split(","))}


def tally(views):
    """(committed, aborted, unknown) transactions over the producers' journals."""
    return tuple(sum(v.tally()[i] for v in views) for i in range(3))


# ---------------------------------------------------------------- reading back

def end_offsets(admin, partitions, level):
    from confluent_kafka.admin import OffsetSpec
    futures = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},
                                 isolation_level=level, request_timeout=CALL_TIMEOUT_S)
    return {(tp.topic, tp.partition): f.result(CALL_TIMEOUT_S).offset for tp, f in futures.items()}


def read_all(bootstrap, partitions, isolation, ends):
    """Every record of PARTITIONS from offset 0 until each partition's end offset (ENDS):
    {(topic, partition): [(offset, value), ...]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"txn-crash-check-{isolation}",
                  "enable.auto.commit": False, "isolation.level": isolation, "enable.partition.eof": True,
                  "log_level": 3})
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
    got = {tp: [] for tp in partitions}
    reached = {tp: ends[tp] == 0 for tp in partitions}
    deadline = time.time() + READ_TIMEOUT_S
    try:
        while not all(reached.values()):
            if time.time() > deadline:
                short = {f"{t}[{p}]": ends[(t, p)] for (t, p), ok in reached.items() if not ok}
                raise Failure(f"the {isolation} read did not reach the end offsets {short} "
                              f"within {READ_TIMEOUT_S} s")
            for m in c.consume(2000, 0.5):
                tp = (m.topic(), m.partition())
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        reached[tp] = reached[tp] or m.offset() >= ends[tp]
                    continue
                got[tp].append((m.offset(), m.value().decode()))
                if m.offset() + 1 >= ends[tp]:
                    reached[tp] = True
    finally:
        c.close()
    return got


def group_offsets(bootstrap):
    """The group's committed ctp-in offsets, by OffsetFetch with require_stable."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    request = [ConsumerGroupTopicPartitions(CTP_GROUP, [TopicPartition(CTP_IN, p) for p in range(CTP_PARTITIONS)])]
    deadline = time.time() + STABLE_TIMEOUT_S + CALL_TIMEOUT_S
    while True:
        try:
            result = admin.list_consumer_group_offsets(request, require_stable=True,
                                                       request_timeout=CALL_TIMEOUT_S)[CTP_GROUP].result()
            return {tp.partition: tp.offset for tp in result.topic_partitions}
        except KafkaException as e:
            if time.time() > deadline:
                raise Failure(f"OffsetFetch of {CTP_GROUP} with require_stable kept failing: {error_name(e)}")
            time.sleep(0.2)


# ---------------------------------------------------------------- the checks

def check_producers(views, committed_read, uncommitted_read, violations):
    """The producers' topics against their journals; returns a summary."""
    where = {}  # (producer, txn, record) -> (topic, partition, offset)
    for tp, records in sorted(committed_read.items()):
        last = {}  # producer -> (txn, record) last seen in this partition
        for offset, value in records:
            try:
                index, txn, r, count = (int(x) for x in value.split(":"))
                view = views[index]
            except (ValueError, IndexError):
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: value {value!r} was never produced")
                continue
            key = (index, txn, r)
            if key in where:
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: {value} read twice (first at {where[key]})")
                continue
            where[key] = (tp[0], tp[1], offset)
            outcome = view.outcome(txn)
            if outcome in ("aborted", "never-committed"):
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: {value} of producer {index}'s {outcome} transaction "
                                  f"{txn} is visible to read_committed")
            if view.count.get(txn) != count:
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: {value} says {count} records, the journal "
                                  f"{view.count.get(txn)}")
            if index in last and last[index] >= (txn, r):
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: {value} after {index}:{last[index][0]}:"
                                  f"{last[index][1]} of the same producer: out of order")
            last[index] = max(last.get(index, (txn, r)), (txn, r))
            reported = view.delivered.get(value)
            if outcome == "committed" and reported is not None and reported != where[key]:
                violations.append(f"{value}: delivered at {reported}, read_committed has it at {where[key]}")

    visible_unknown = 0
    for index, view in enumerate(views):
        for txn, count in sorted(view.count.items()):
            present = sum((index, txn, r) in where for r in range(count))
            outcome = view.outcome(txn)
            if outcome == "committed" and present != count:
                violations.append(f"producer {index}'s committed transaction {txn} has {present} of its {count} "
                                  f"records under read_committed")
            if outcome == "unknown" and present not in (0, count):
                violations.append(f"producer {index}'s transaction {txn} (commit outcome unknown) has {present} of "
                                  f"its {count} records under read_committed: not all or nothing")
            visible_unknown += outcome == "unknown" and present == count
    check_superset(committed_read, uncommitted_read, views, violations)
    committed, aborted, unknown = tally(views)
    return (f"{committed} committed, {aborted} aborted, {unknown} unknown ({visible_unknown} of them committed) "
            f"producer transactions; {len(where)} records under read_committed")


def check_superset(committed_read, uncommitted_read, views, violations):
    """read_uncommitted holds every read_committed record at its offset, and every record
    whose delivery was reported at the reported offset."""
    by_offset = {tp: dict(records) for tp, records in uncommitted_read.items()}
    for tp, records in committed_read.items():
        for offset, value in records:
            if by_offset[tp].get(offset) != value:
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: read_committed has {value}, read_uncommitted "
                                  f"{by_offset[tp].get(offset)!r}")
    for view in views:
        for value, (topic, partition, offset) in sorted(view.delivered.items()):
            if (topic, partition) in by_offset and by_offset[(topic, partition)].get(offset) != value:
                violations.append(f"{value}: delivery reported at {topic}[{partition}]@{offset}, read_uncommitted "
                                  f"has {by_offset[(topic, partition)].get(offset)!r} there")


def check_ctp(view, group, inputs, committed_out, uncommitted_out, violations):
    """The consume-transform-produce output against the group's committed offsets."""
    seen = {}  # (input partition, input offset) -> output (partition, offset)
    per_txn = {}
    for (_, out_part), records in sorted(committed_out.items()):
        last = -1
        for offset, value in records:
            try:
                in_part, in_offset, txn = (int(x) for x in value.split(":"))
            except ValueError:
                violations.append(f"{CTP_OUT}[{out_part}]@{offset}: value {value!r} was never produced")
                continue
            if (in_part, in_offset) in seen:
                violations.append(f"{CTP_OUT}[{out_part}]@{offset}: input {CTP_IN}[{in_part}]@{in_offset} is in the "
                                  f"committed output twice (first at {seen[(in_part, in_offset)]})")
            seen[(in_part, in_offset)] = (out_part, offset)
            per_txn[txn] = per_txn.get(txn, 0) + 1
            if in_offset <= last:
                violations.append(f"{CTP_OUT}[{out_part}]@{offset}: input offset {in_offset} after {last}: "
                                  f"out of order")
            last = max(last, in_offset)
            outcome = view.outcome(txn)
            if outcome in ("aborted", "never-committed"):
                violations.append(f"{CTP_OUT}[{out_part}]@{offset}: {value} of the {outcome} consume-transform-produce "
                                  f"transaction {txn} is visible to read_committed")
    for txn, count in sorted(view.count.items()):
        present, outcome = per_txn.get(txn, 0), view.outcome(txn)
        if outcome == "committed" and present != count:
            violations.append(f"consume-transform-produce transaction {txn} committed {count} records, "
                              f"read_committed has {present}")
        if outcome == "unknown" and present not in (0, count):
            violations.append(f"consume-transform-produce transaction {txn} (commit outcome unknown) has {present} of "
                              f"its {count} records: not all or nothing")
    processed = 0
    for part in range(CTP_PARTITIONS):
        offset = group.get(part, -1)
        committed_to = max(offset, 0)
        want = {o for o, _ in inputs.get((CTP_IN, part), []) if o < committed_to}
        have = {o for (p, o) in seen if p == part}
        if offset > 0 and not any(o == offset - 1 for o, _ in inputs.get((CTP_IN, part), [])):
            violations.append(f"the group's committed offset {offset} for {CTP_IN}[{part}] follows no input record")
        lost, extra = sorted(want - have), sorted(have - want)
        if lost:
            violations.append(f"{CTP_IN}[{part}]: {len(lost)} input records below the committed offset {offset} are "
                              f"missing from the committed output, first {lost[:5]}")
        if extra:
            violations.append(f"{CTP_IN}[{part}]: {len(extra)} input records at or past the committed offset {offset} "
                              f"are in the committed output, first {extra[:5]}")
        for txn in sorted(view.committed):
            nexts = view.nexts.get(txn, {})
            if part in nexts and nexts[part] > committed_to:
                violations.append(f"consume-transform-produce transaction {txn} committed {CTP_IN}[{part}] up to "
                                  f"{nexts[part]}, the group's offset is {offset}")
                break
        processed += len(have)
    by_offset = {tp: dict(records) for tp, records in uncommitted_out.items()}
    for tp, records in committed_out.items():
        for offset, value in records:
            if by_offset[tp].get(offset) != value:
                violations.append(f"{tp[0]}[{tp[1]}]@{offset}: read_committed has {value}, read_uncommitted "
                                  f"{by_offset[tp].get(offset)!r}")
    committed, aborted, unknown = view.tally()
    return (f"consume-transform-produce: {committed} committed, {aborted} aborted, {unknown} unknown transactions; "
            f"{processed} input records processed, group offsets {dict(sorted(group.items()))}")


# ---------------------------------------------------------------- the run

class Worker:
    """One worker process, started again whenever it crashed on purpose (CRASH_EXIT_CODE);
    its journal outlives its instances."""

    def __init__(self, root, name, args, stop_path, seed):
        self.root, self.name, self.args, self.stop_path, self.seed = root, name, args, stop_path, seed
        self.journal = os.path.join(root, f"{name}.journal")
        self.reader = JournalReader(self.journal)
        self.proc, self.crashes = None, 0
        self.start()

    def start(self):
        with open(os.path.join(self.root, f"{self.name}.stderr"), "ab") as err:
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *self.args, self.journal,
                                          self.stop_path, str(self.seed)], stdout=subprocess.DEVNULL, stderr=err)

    def tend(self):
        """Starts a crashed worker again; a worker that failed is the test's failure."""
        code = self.proc.poll()
        if code == CRASH_EXIT_CODE:
            self.crashes += 1
            self.start()
        elif code is not None and code != 0:
            raise Failure(f"worker {self.name} exited with {code}: {self.stderr_tail()}")

    def stderr_tail(self):
        with open(os.path.join(self.root, f"{self.name}.stderr"), errors="replace") as f:
            return f.read()[-2000:]

    def view(self):
        return self.reader.update()


class Run:
    def __init__(self, bin_path, rounds, seed, fsync, keep):
        self.rounds, self.rng, self.keep = rounds, random.Random(seed), keep
        self.root = tempfile.mkdtemp(prefix="weir-txn-crash-")
        self.broker = Broker(bin_path, self.root, fsync)
        self.stop_path = os.path.join(self.root, "stop")
        self.workers = []  # the producers', then the consume-transform-produce worker
        self.fed = 0

    def journals(self):
        return [w.view() for w in self.workers]

    def spawn(self, name, *args):
        self.workers.append(Worker(self.root, name, list(args), self.stop_path, self.rng.randrange(1 << 30)))

    def pause(self, seconds):
        """Sleeps, restarting crashed workers meanwhile."""
        until = time.time() + seconds
        while True:
            self.tend()
            left = until - time.time()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def tend(self):
        for w in self.workers:
            w.tend()

    def create_topics(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap, "log_level": 3})
        wanted = [NewTopic(t, n, 1) for t, n in sorted(TOPICS.items())]
        wanted += [NewTopic(t, CTP_PARTITIONS, 1) for t in (CTP_IN, CTP_OUT)]
        for topic, f in admin.create_topics(wanted, request_timeout=CALL_TIMEOUT_S).items():
            f.result(CALL_TIMEOUT_S)

    def feed(self):
        """CTP_FEED_PER_PARTITION more input records in each ctp-in partition (idempotent,
        acks=all; the checker reads the input back, so a record cut off by a kill is fine)."""
        p = Producer({"bootstrap.servers": self.broker.bootstrap, "enable.idempotence": True, "acks": "all",
                      "linger.ms": 5, "message.timeout.ms": 10000, "log_level": 0})
        for part in range(CTP_PARTITIONS):
            for _ in range(CTP_FEED_PER_PARTITION):
                self.fed += 1
                p.produce(CTP_IN, value=f"in{self.fed}".encode(), partition=part)
                p.poll(0)
        left = p.flush(CALL_TIMEOUT_S)
        if left:
            raise Failure(f"{left} ctp-in records were not acknowledged within {CALL_TIMEOUT_S} s")

    def committed_counts(self):
        return [len(v.committed) for v in self.journals()]

    def wait_progress(self, before, why):
        """Every worker has committed a transaction since BEFORE (a list of counts)."""
        deadline = time.time() + PROGRESS_TIMEOUT_S
        while True:
            self.tend()
            now = self.committed_counts()
            if all(a > b for a, b in zip(now, before)):
                return
            if time.time() > deadline:
                stuck = [w.name for w, a, b in zip(self.workers, now, before) if a <= b]
                self.dump_stacks()
                raise Failure(f"{', '.join(stuck)} committed no transaction within {PROGRESS_TIMEOUT_S} s {why}; "
                              f"see {self.root}")
            time.sleep(0.1)

    def wait_in_commit(self):
        """Returns once a worker's journal ends with a commit asked and not answered (True),
        or after IN_COMMIT_WAIT_MAX_S (False)."""
        deadline = time.time() + IN_COMMIT_WAIT_MAX_S
        while time.time() < deadline:
            self.tend()
            if any(w.view() and w.reader.last_kind == "C" for w in self.workers):
                return True
            time.sleep(0.002)
        return False

    def dump_stacks(self):
        """Asks every worker for its Python stacks (into its .stderr file), for the report."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)

    def run(self):
        self.broker.start()
        self.create_topics()
        self.feed()
        for index in range(PRODUCERS):
            self.spawn(f"producer-{index}", "--producer", self.broker.bootstrap, str(index))
        self.spawn("ctp", "--ctp", self.broker.bootstrap)
        self.wait_progress([0] * len(self.workers), "after the start")
        last = tally(self.journals()[:PRODUCERS])
        for n in range(1, self.rounds + 1):
            before = self.committed_counts()
            mode = self.rng.random()
            if n > 1 and mode < EARLY_KILL_PROBABILITY:
                delay = self.rng.uniform(0, EARLY_KILL_DELAY_MAX_S)
                self.pause(delay)
                when = f"{delay:.2f} s after the restart"
            else:
                self.feed()
                self.wait_progress(before, f"after restart {n - 1}" if n > 1 else "after the start")
                if mode < EARLY_KILL_PROBABILITY + IN_COMMIT_KILL_PROBABILITY:
                    when = "in a commit" if self.wait_in_commit() else "after no commit was seen in flight"
                else:
                    delay = self.rng.uniform(0, KILL_DELAY_MAX_S)
                    self.pause(delay)
                    when = f"{delay:.2f} s after every worker committed again"
            self.broker.kill9()
            at_kill = [w.view() and w.reader.last_kind for w in self.workers]
            self.pause(self.rng.uniform(0, DOWNTIME_MAX_S))
            took = self.broker.start()
            now = tally(self.journals()[:PRODUCERS])
            ctp = len(self.journals()[-1].committed)
            print(f"round {n}/{self.rounds}: kill -9 {when} ({at_kill.count('C')} commits, {at_kill.count('B')} "
                  f"open transactions in flight); listening again in {took:.2f} s; since the last kill "
                  f"{now[0] - last[0]} committed, {now[1] - last[1]} aborted, {now[2] - last[2]} unknown producer "
                  f"transactions; {ctp} consume-transform-produce commits in all", flush=True)
            last = now
        self.feed()
        self.wait_progress(self.committed_counts(), "after the last restart")
        return self.finish()

    def stop_workers(self):
        """Each worker ends its transaction, makes sure a new instance fenced whatever a crashed
        one left open, and exits 0; one that crashes on the way is started again to do so."""
        open(self.stop_path, "w").close()
        deadline = time.time() + STOP_TIMEOUT_S
        while any(w.proc.poll() != 0 for w in self.workers):
            if time.time() > deadline:
                late = [w.name for w in self.workers if w.proc.poll() != 0]
                raise Failure(f"{', '.join(late)} did not end the last transaction and exit within "
                              f"{STOP_TIMEOUT_S} s")
            self.pause(0.1)

    def finish(self):
        """Stops the workers and checks everything; returns the summary and the violations."""
        self.stop_workers()
        from confluent_kafka import IsolationLevel
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap, "log_level": 3})
        txn_partitions = [(t, p) for t, n in sorted(TOPICS.items()) for p in range(n)]
        out_partitions = [(CTP_OUT, p) for p in range(CTP_PARTITIONS)]
        in_partitions = [(CTP_IN, p) for p in range(CTP_PARTITIONS)]
        violations = []
        # Every transaction has ended (the workers ended theirs; what a crashed or dropped
        # producer left was fenced by the next instance), so each last stable offset must
        # reach its high watermark; one left open would be aborted within its timeout.
        deadline = time.time() + STABLE_TIMEOUT_S
        while True:
            hw = end_offsets(admin, txn_partitions + out_partitions + in_partitions, IsolationLevel.READ_UNCOMMITTED)
            lso = end_offsets(admin, txn_partitions + out_partitions + in_partitions, IsolationLevel.READ_COMMITTED)
            behind = {f"{t}[{p}]": (lso[(t, p)], hw[(t, p)]) for t, p in hw if lso[(t, p)] != hw[(t, p)]}
            if not behind or time.time() > deadline:
                break
            time.sleep(0.2)
        if behind:
            violations.append(f"last stable offset below the high watermark {STABLE_TIMEOUT_S:.0f} s after every "
                              f"producer ended, (lso, hw): {behind}")
        committed_read = read_all(self.broker.bootstrap, txn_partitions + out_partitions, "read_committed", lso)
        uncommitted_read = read_all(self.broker.bootstrap, txn_partitions + out_partitions + in_partitions,
                                    "read_uncommitted", hw)
        views = self.journals()
        summary = [check_producers(views[:PRODUCERS],
                                   {tp: r for tp, r in committed_read.items() if tp[0] in TOPICS},
                                   {tp: r for tp, r in uncommitted_read.items() if tp[0] in TOPICS}, violations)]
        group = group_offsets(self.broker.bootstrap)
        summary.append(check_ctp(views[-1], group, {tp: uncommitted_read[tp] for tp in in_partitions},
                                 {tp: committed_read[tp] for tp in out_partitions},
                                 {tp: uncommitted_read[tp] for tp in out_partitions}, violations))
        summary.append("application crashes (worker processes started again): "
                       + ", ".join(f"{w.name} {w.crashes}" for w in self.workers))
        panics = self.broker.panics()
        if panics:
            violations.append(f"weir panicked: {panics[0]}")
        return summary, violations

    def cleanup(self, failed):
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        self.broker.stop()
        if failed or self.keep:
            print(f"data, weir.log and the workers' journals are kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("--producer", "--ctp"):
        faulthandler.register(signal.SIGUSR1)  # a stuck worker's stacks, asked for before failing
    if len(sys.argv) > 1 and sys.argv[1] == "--producer":
        bootstrap, index, journal, stop, seed = sys.argv[2:7]
        producer_worker(bootstrap, int(index), journal, stop, int(seed))
    if len(sys.argv) > 1 and sys.argv[1] == "--ctp":
        bootstrap, journal, stop, seed = sys.argv[2:6]
        ctp_worker(bootstrap, journal, stop, int(seed))
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bin_path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
    fsync = os.environ.get("WEIR_TXN_CRASH_FSYNC", "always")
    budget_s = time_budget_s(rounds)
    print(f"transactional crash test: {rounds} rounds, seed {seed}, {PRODUCERS} producers and a "
          f"consume-transform-produce worker, --fsync {fsync}, at most {budget_s} s", flush=True)

    def out_of_time(signum, frame):
        raise OutOfTime(f"the test did not finish within its {budget_s} s budget")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(budget_s)
    began = time.time()
    run = Run(bin_path, rounds, seed, fsync, keep=bool(os.environ.get("WEIR_TXN_CRASH_KEEP")))
    failed = True
    try:
        summary, violations = run.run()
        signal.alarm(0)
        for line in summary:
            print(line)
        for v in violations[:VIOLATIONS_SHOWN_MAX]:
            print(f"VIOLATION {v}")
        if len(violations) > VIOLATIONS_SHOWN_MAX:
            print(f"... and {len(violations) - VIOLATIONS_SHOWN_MAX} more violations")
        failed = bool(violations)
        print(f"{'FAIL' if failed else 'PASS'} transactional crash test: {rounds} kills, {len(violations)} violations, "
              f"{time.time() - began:.0f} s, seed {seed}")
    except Failure as e:
        signal.alarm(0)
        print(f"FAIL transactional crash test: {e} (seed {seed}, {time.time() - began:.0f} s)")
    except Exception as e:  # noqa: BLE001 - a test that cannot run is a failure, never a skip
        signal.alarm(0)
        traceback.print_exc()
        print(f"FAIL transactional crash test: {type(e).__name__}: {e} (seed {seed}, {time.time() - began:.0f} s)")
    finally:
        signal.alarm(0)
        run.cleanup(failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
