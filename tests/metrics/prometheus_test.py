#!/usr/bin/env python3
"""A real Prometheus scrapes weir's /metrics and answers PromQL about it.

weir starts on free ports; N records go to a one-partition topic with `weir produce`; a
group commits offset M < N with `weir groups reset-offsets --to-offset M --execute` (the
group has no members, so the reset is allowed). Prometheus (Debian's package,
/usr/bin/prometheus) then scrapes weir every second from its own temp storage, and the test
waits for the target to be up and asks, through the HTTP API:

- `up{job="weir"}` is 1;
- the group's lag (`weir_group_lag`) is N - M;
- the partition's high watermark is N and its records-in counter is N;
- the process families are there (`process_resident_memory_bytes` > 0).

Usage: prometheus_test.py WEIR_BIN [--prometheus PATH]
Prints one line per check; exits non-zero on any failure. Prometheus and weir are stopped
whatever happens.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compat"))
from harness import Weir, free_port, wait_until  # noqa: E402

RECORDS = 50
COMMITTED = 20
TOPIC = "prom-orders"
GROUP = "prom-billing"
# Prometheus needs a few scrapes before a series is queryable; a slow CI machine gets room.
TARGET_UP_TIMEOUT_S = 60
QUERY_TIMEOUT_S = 60


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


class Prometheus:
    """A Prometheus server with a generated config scraping one target every second."""

    def __init__(self, binary, target):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="weir-prometheus-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: weir\n"
                "    scrape_interval: 1s\n"
                "    scrape_timeout: 1s\n"
                "    static_configs:\n"
                f"      - targets: ['{target}']\n"
            )
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "prometheus.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT)
        ready = wait_until(lambda: self._ready(), 30)
        if not ready:
            raise RuntimeError(f"prometheus did not become ready; see {self.dir}/prometheus.log")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}; see {self.dir}/prometheus.log")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def target_health(self):
        active = http_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"]
        return [(t["labels"].get("job"), t["health"], t.get("lastError", "")) for t in active]

    def query(self, promql):
        """The value of an instant query's single sample, or None when it has no sample."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        result = http_json(url)["data"]["result"]
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def weir_cli(weir_bin, bootstrap, cwd, *args, stdin=None):
    """Runs the weir CLI in `cwd`, where `groups reset-offsets` leaves its undo file."""
    r = subprocess.run([weir_bin, *args, "--bootstrap", bootstrap], input=stdin, capture_output=True,
                       text=True, timeout=60, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError(f"weir {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout + r.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weir_bin")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    args = parser.parse_args()
    if not os.path.exists(args.prometheus):
        print(f"FAIL: no Prometheus at {args.prometheus}; install Debian's prometheus package")
        return 1

    failures = 0

    def check(name, ok, detail=""):
        nonlocal failures
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failures += 0 if ok else 1

    weir = Weir(args.weir_bin)
    prometheus = Prometheus(args.prometheus, weir.http_listen)
    try:
        weir.start()
        b = weir.bootstrap
        weir_cli(args.weir_bin, b, weir.dir, "topics", "create", TOPIC, "--partitions", "1")
        out = weir_cli(args.weir_bin, b, weir.dir, "produce", TOPIC,
                       stdin="".join(f"record-{i}\n" for i in range(RECORDS)))
        check(f"weir produce wrote {RECORDS} records", f"produced {RECORDS} records" in out, out)
        weir_cli(args.weir_bin, b, weir.dir, "groups", "reset-offsets", GROUP, "--topic", TOPIC,
                 "--to-offset", str(COMMITTED), "--execute")

        prometheus.start()
        up = wait_until(lambda: any(h == "up" for job, h, _ in prometheus.target_health() if job == "weir"),
                        TARGET_UP_TIMEOUT_S)
        check("Prometheus reports the weir target up", up, str(prometheus.target_health()))

        def value_of(promql):
            got = []
            wait_until(lambda: got.append(prometheus.query(promql)) or got[-1] is not None, QUERY_TIMEOUT_S)
            return got[-1]

        check('up{job="weir"} is 1', value_of('up{job="weir"}') == 1.0)
        lag = value_of(f'sum(weir_group_lag{{group="{GROUP}",topic="{TOPIC}"}})')
        check(f"the group's lag is {RECORDS} - {COMMITTED} = {RECORDS - COMMITTED}",
              lag == RECORDS - COMMITTED, f"got {lag}")
        hw = value_of(f'weir_partition_high_watermark{{topic="{TOPIC}",partition="0"}}')
        check(f"the partition's high watermark is {RECORDS}", hw == RECORDS, f"got {hw}")
        records_in = value_of(f'weir_partition_records_in_total{{topic="{TOPIC}",partition="0"}}')
        check(f"the partition's records-in counter is {RECORDS}", records_in == RECORDS, f"got {records_in}")
        rss = value_of('process_resident_memory_bytes{job="weir"}')
        check("process_resident_memory_bytes is reported", rss is not None and rss > 0, f"got {rss}")
    except Exception as e:  # noqa: BLE001 - any failure is reported as one, then cleaned up
        check("the scenario ran to the end", False, repr(e))
    finally:
        prometheus.stop()
        weir.stop()
        shutil.rmtree(weir.dir, ignore_errors=True)
    print(f"{'passed' if failures == 0 else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
