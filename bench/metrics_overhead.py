#!/usr/bin/env python3
"""What serving /metrics costs produce throughput: `weir bench produce` against a weir with
its HTTP listener off, and against one with it on and scraped every --scrape-every seconds
(a thread GETs /metrics, as Prometheus would), interleaved over --rounds rounds so drifts
of a shared machine fall on both sides alike. Each run starts a fresh weir in a temp dir.

Prints each run (with the scrapes' mean and slowest time), then the medians and means and
their ratios on/off (1.00 = no cost). On Linux it then measures what one scrape costs the
broker in CPU time (from /proc), which a noisy machine cannot hide: the share of a core that
scraping takes is the most it can take from produce.

Usage: bench/metrics_overhead.py [--weir-bin target/release/weir] [--rounds 7]
       [--records 2000000] [--size 100] [--partitions 3] [--acks 1] [--scrape-every 1]
       [--serve-arg=--fsync --serve-arg=never]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Prometheus's default scrape timeout.
SCRAPE_TIMEOUT_S = 10
# Back-to-back scrapes over which the broker's CPU time per scrape is measured.
SCRAPE_CPU_SCRAPES = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout_s=30):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weir exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"weir did not listen on {port} within {timeout_s}s")


class Scraper(threading.Thread):
    """GETs /metrics every `every_s` seconds until stopped; counts scrapes, keeps the slowest
    and the reason of each failure."""

    def __init__(self, url, every_s):
        super().__init__(daemon=True)
        self.url, self.every_s = url, every_s
        self.stop_flag = threading.Event()
        self.scrapes, self.seconds, self.slowest = 0, 0.0, 0.0
        self.failures = []

    def run(self):
        while not self.stop_flag.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=SCRAPE_TIMEOUT_S) as resp:
                    resp.read()
                self.scrapes += 1
                took = time.monotonic() - started
                self.seconds += took
                self.slowest = max(self.slowest, took)
            except OSError as e:
                self.failures.append(repr(e))
            self.stop_flag.wait(max(0.0, self.every_s - (time.monotonic() - started)))


def process_cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc (Linux), in USER_HZ=100 ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def scrape_cpu(args, scrapes=SCRAPE_CPU_SCRAPES):
    """The broker CPU one scrape costs: a weir holding the bench topic (a short produce
    first), scraped back to back; its CPU time over the scrapes, per scrape."""
    work = tempfile.mkdtemp(prefix="weir-metrics-bench-")
    port, http_port = free_port(), free_port()
    proc = subprocess.Popen([args.weir_bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             os.path.join(work, "data"), "--http-listen", f"127.0.0.1:{http_port}"]
                            + args.serve_arg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        wait_port(http_port, proc)
        subprocess.run([args.weir_bin, "bench", "--bootstrap", f"127.0.0.1:{port}", "produce", "--topic",
                        "overhead", "--records", "100000", "--partitions", str(args.partitions)],
                       capture_output=True, check=True, timeout=120)
        url = f"http://127.0.0.1:{http_port}/metrics"
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as resp:
            size = len(resp.read())
        before = process_cpu_seconds(proc.pid)
        for _ in range(scrapes):
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as resp:
                resp.read()
        per_scrape = (process_cpu_seconds(proc.pid) - before) / scrapes
        return per_scrape, size
    finally:
        stop(proc, work)


def stop(proc, work):
    """Stops a weir the way its users do (SIGTERM, SIGKILL after 15 s) and removes its dir."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(work, ignore_errors=True)


def one_run(args, http_on):
    work = tempfile.mkdtemp(prefix="weir-metrics-bench-")
    port = free_port()
    http_port = free_port()
    http = f"127.0.0.1:{http_port}" if http_on else "off"
    log = open(os.path.join(work, "weir.log"), "wb")
    proc = subprocess.Popen([args.weir_bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             os.path.join(work, "data"), "--http-listen", http] + args.serve_arg,
                            stdout=log, stderr=subprocess.STDOUT)
    scraper = None
    try:
        wait_port(port, proc)
        if http_on:
            # The HTTP listener opens after the Kafka one; scraping starts once both answer.
            wait_port(http_port, proc)
            scraper = Scraper(f"http://{http}/metrics", args.scrape_every)
            scraper.start()
        out = subprocess.run([args.weir_bin, "bench", "--bootstrap", f"127.0.0.1:{port}", "produce",
                              "--topic", "overhead", "--records", str(args.records), "--size", str(args.size),
                              "--partitions", str(args.partitions), "--acks", str(args.acks), "--output", "json"],
                             capture_output=True, text=True, timeout=600)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"weir bench produce failed: {out.stderr[-300:]}")
        result = json.loads(lines[-1])
        scrapes = None
        if scraper:
            scraper.stop_flag.set()
            scraper.join()
            if scraper.scrapes == 0:
                raise RuntimeError("no scrape succeeded during the run")
            scrapes = (scraper.scrapes, scraper.failures, scraper.seconds / max(1, scraper.scrapes),
                       scraper.slowest)
        return result["records_per_s"], scrapes
    finally:
        if scraper:
            scraper.stop_flag.set()
        stop(proc, work)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weir-bin", default=os.path.join(ROOT, "target", "release", "weir"))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--acks", type=int, default=1)
    p.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="an extra argument for weir serve, e.g. --serve-arg=--fsync --serve-arg=never")
    args = p.parse_args()

    rates = {False: [], True: []}
    for i in range(args.rounds):
        # Alternate which side goes first, so neither always runs on a warmer machine.
        for http_on in ((False, True) if i % 2 == 0 else (True, False)):
            rate, scrapes = one_run(args, http_on)
            rates[http_on].append(rate)
            detail = "" if scrapes is None else \
                f" ({scrapes[0]} scrapes, mean {scrapes[2] * 1000:.1f} ms, slowest {scrapes[3] * 1000:.0f} ms" \
                f"{', failed: ' + '; '.join(scrapes[1]) if scrapes[1] else ''})"
            print(f"round {i + 1} http {'on ' if http_on else 'off'}: {rate:,.0f} records/s{detail}", flush=True)
    for name, f in (("median", statistics.median), ("mean", statistics.mean)):
        off, on = f(rates[False]), f(rates[True])
        print(f"{name} off: {off:,.0f} records/s; on, scraped every {args.scrape_every:g} s: "
              f"{on:,.0f} records/s; ratio on/off: {on / off:.3f}")
    if sys.platform.startswith("linux"):
        per_scrape, size = scrape_cpu(args)
        print(f"broker CPU per scrape ({size:,} bytes of metrics): {per_scrape * 1000:.2f} ms, "
              f"{per_scrape / args.scrape_every * 100:.3f} % of one core at one scrape every {args.scrape_every:g} s")


if __name__ == "__main__":
    sys.exit(main())
