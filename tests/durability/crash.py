#!/usr/bin/env python3
"""Crash test: every record acknowledged under acks=all, and every offset commit
acknowledged, with --fsync always survives kill -9.

Each round starts weir on a free loopback port, produces continuously with acks=all from
librdkafka (confluent-kafka) while remembering which records were acknowledged, and commits
ever higher offsets for a group from another client, kills weir with SIGKILL at a random
moment, restarts it on the same data directory, and reads every partition back: each
acknowledged record must be there, exactly at the offset it was acknowledged with, and the
group's committed offsets must be at least the last acknowledged commit. Prints one line
per round and ends with "N passed, M failed".

Usage: crash.py WEIR_BIN [ROUNDS] [SEED]
"""
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
START_TIMEOUT_S = 15


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bin_path, port, data_dir, log):
    proc = subprocess.Popen(
        [bin_path, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, "--fsync", "always",
         "--http-listen", "off"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"weir exited with {proc.returncode}")
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("weir did not start listening in time")


def produce_until_killed(bootstrap, topic, acked, stop):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 0, "enable.idempotence": True,
                  "linger.ms": 1, "message.timeout.ms": 5000, "retries": 2147483647})

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    i = 0
    while not stop.is_set():
        try:
            p.produce(topic, key=str(i % 97).encode(), value=f"v{i}".encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            p.poll(0.01)
        if i % 100 == 0:
            p.poll(0)
    p.poll(0)
    # Whatever is still in flight is abandoned: only callbacks seen so far count.


def commit_until_killed(bootstrap, topic, acked_commits, stop):
    """Commits offsets 1, 2, 3, ... for every partition, synchronously; records each one
    the broker acknowledged."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-commits", "enable.auto.commit": False,
                  "log_level": 0})
    k = 0
    while not stop.is_set():
        k += 1
        try:
            c.commit(offsets=[TopicPartition(topic, p, k) for p in range(PARTITIONS)], asynchronous=False)
        except Exception:  # noqa: BLE001 - the broker is gone: what was acknowledged stands
            break
        acked_commits.append(k)
    c.close()


def committed(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-commits", "enable.auto.commit": False})
    got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 30)
    c.close()
    return [tp.offset for tp in got]


def read_all(bootstrap, topic, ends):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-check", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got = {}
    deadline = time.time() + 30
    while time.time() < deadline and any(len([k for k in got if k[0] == p]) < ends[p] for p in range(PARTITIONS)):
        for m in c.consume(10000, 0.5):
            if m.error():
                continue
            got[(m.partition(), m.offset())] = m.value()
    c.close()
    return got


def round_once(bin_path, rng, n):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data, open(os.path.join(data, "weir.log"), "ab") as log:
        data_dir = os.path.join(data, "data")
        proc = start(bin_path, port, data_dir, log)
        topic = f"crash-{n}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
        acked, acked_commits, stop = [], [], threading.Event()
        t = threading.Thread(target=produce_until_killed, args=(bootstrap, topic, acked, stop))
        t.start()
        committer = threading.Thread(target=commit_until_killed, args=(bootstrap, topic, acked_commits, stop))
        committer.start()
        # Kill at a random moment once production is flowing and a commit was acknowledged
        # (on a busy machine the group's first commit can take longer than the first record).
        flowing_by = time.time() + 20
        while not (acked and acked_commits) and time.time() < flowing_by:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        snapshot = list(acked)  # acknowledged before the kill is sent
        last_commit = acked_commits[-1] if acked_commits else 0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        t.join(30)
        proc = start(bin_path, port, data_dir, log)
        # A commit in flight at the kill blocks until the broker is back; it may land after
        # the restart, which is why the check is "at least the last acknowledged commit".
        committer.join(60)
        try:
            ends = {p: 0 for p in range(PARTITIONS)}
            for part, off, _ in snapshot:
                ends[part] = max(ends[part], off + 1)
            got = read_all(bootstrap, topic, ends)
            missing = [(p, o) for p, o, v in snapshot if got.get((p, o)) != v]
            if missing:
                return False, f"{len(missing)} of {len(snapshot)} acknowledged records missing or changed, first {missing[:3]}"
            if not snapshot:
                return False, "nothing was acknowledged before the kill"
            offsets = committed(bootstrap, topic)
            if last_commit == 0 or any(o < last_commit for o in offsets):
                return False, f"committed offsets {offsets} after the restart, {last_commit} was acknowledged"
            return True, f"{len(snapshot)} acknowledged records all present; commit {last_commit} kept ({offsets})"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main():
    bin_path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
    rng = random.Random(seed)
    print(f"crash test: {rounds} rounds, seed {seed}")
    passed = failed = 0
    for n in range(rounds):
        try:
            ok, why = round_once(bin_path, rng, n)
        except Exception as e:  # a round that cannot run is a failure, never a skip
            ok, why = False, f"round error: {e}"
        print(f"{'PASS' if ok else 'FAIL'} kill-9 round {n + 1}: {why}", flush=True)
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
