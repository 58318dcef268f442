"""Several `weir serve --cluster` processes on one PostgreSQL and one bucket, for the
cluster-mode tests.

    with Postgres() as pg:
        brokers = Brokers(weir_bin, pg.url(), "file:///tmp/bucket", workdir)
        brokers.start(1); brokers.start(2); brokers.start(3)
        brokers.bootstrap()       # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
        brokers.kill(2)           # SIGKILL
        brokers.start(2)          # again, on the same ports
        brokers.close()

Each broker keeps its Kafka and HTTP ports across restarts (clients that cached its address
find it again), logs to `<workdir>/broker-N.log`, and is killed when the interpreter exits.
"""

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.request

START_TIMEOUT_S = 30

_all = []


def _close_all():
    for brokers in list(_all):
        brokers.close()


atexit.register(_close_all)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Brokers:
    def __init__(self, weir_bin, cluster_url, bucket_url, workdir, env=None, lease_ms=3000, batch_ms=20,
                 extra_args=()):
        self.weir_bin = weir_bin
        self.cluster_url = cluster_url
        self.bucket_url = bucket_url
        self.workdir = workdir
        self.env = dict(os.environ, **(env or {}))
        self.lease_ms = lease_ms
        self.batch_ms = batch_ms
        self.extra_args = list(extra_args)
        self.ports = {}  # node id -> (kafka port, http port)
        self.procs = {}  # node id -> Popen, while running
        self.log_offsets = {}  # node id -> where the current run's log starts
        _all.append(self)

    def log_path(self, node_id):
        return os.path.join(self.workdir, f"broker-{node_id}.log")

    def start(self, node_id, wait=True):
        if node_id in self.procs and self.procs[node_id].poll() is None:
            raise RuntimeError(f"broker {node_id} is already running")
        kafka_port, http_port = self.ports.setdefault(node_id, (free_port(), free_port()))
        data_dir = os.path.join(self.workdir, f"data-{node_id}")
        os.makedirs(data_dir, exist_ok=True)
        log = open(self.log_path(node_id), "ab")
        self.log_offsets[node_id] = log.tell()
        args = [self.weir_bin, "serve", "--cluster", self.cluster_url, "--object-store", self.bucket_url,
                "--node-id", str(node_id), "--listen", f"127.0.0.1:{kafka_port}",
                "--http-listen", f"127.0.0.1:{http_port}", "--data-dir", data_dir,
                "--cluster-lease-ms", str(self.lease_ms), "--cluster-batch-ms", str(self.batch_ms),
                *self.extra_args]
        self.procs[node_id] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        if wait:
            self.wait_listening(node_id)
        return self.procs[node_id]

    def wait_listening(self, node_id):
        """Until this run of the broker logs that it serves. Its port is bound before it
        registers, so a connection alone would come too early."""
        proc = self.procs[node_id]
        path = self.log_path(node_id)
        with open(path, "rb") as f:
            f.seek(self.log_offsets[node_id])
            seen = b""
            deadline = time.time() + START_TIMEOUT_S
            while time.time() < deadline:
                seen += f.read()
                if b"weir listening on" in seen:
                    return
                if proc.poll() is not None:
                    raise RuntimeError(f"broker {node_id} exited with {proc.returncode}:\n{self.tail(node_id)}")
                time.sleep(0.05)
        raise RuntimeError(f"broker {node_id} did not start within {START_TIMEOUT_S}s:\n{self.tail(node_id)}")

    def tail(self, node_id, lines=30):
        with open(self.log_path(node_id), errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def running(self):
        return sorted(n for n, p in self.procs.items() if p.poll() is None)

    def kill(self, node_id):
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, node_id, timeout_s=30):
        """SIGTERM: the broker leaves the cluster and exits."""
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise RuntimeError(f"broker {node_id} did not exit within {timeout_s}s of SIGTERM")

    def address(self, node_id):
        return f"127.0.0.1:{self.ports[node_id][0]}"

    def bootstrap(self, node_ids=None):
        return ",".join(self.address(n) for n in (node_ids or self.running()))

    def metrics(self, node_id):
        url = f"http://127.0.0.1:{self.ports[node_id][1]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def metric_sum(self, node_id, family, label_filter=""):
        """The sum of a family's samples on one broker whose labels contain `label_filter`."""
        total = 0.0
        for line in self.metrics(node_id).splitlines():
            if line.startswith("#") or not line.startswith(family):
                continue
            name_and_labels, _, value = line.rpartition(" ")
            name = name_and_labels.split("{", 1)[0]
            if name not in (family, family + "_total") or label_filter not in name_and_labels:
                continue
            total += float(value)
        return total

    def close(self):
        for node_id in list(self.procs):
            proc = self.procs.pop(node_id)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self in _all:
            _all.remove(self)
