"""Self-check of services.py: starts a real PostgreSQL and a real SeaweedFS, round-trips
data through each across a restart, freezes PostgreSQL and sees a query wait for it, and
checks that a process killed with SIGTERM leaves no server or directory behind.

    bash tests/cluster/install.sh && python3 tests/cluster/services_test.py

Prints one PASS/FAIL line per check and "N passed, M failed"; exits 1 on any failure.
Uses only psql and curl (--aws-sigv4) as clients.
"""

import os
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from services import Postgres, Seaweed, S3_BUCKET, curl_s3, postgres_bin_dir  # noqa: E402

# How long a query must stay unanswered while PostgreSQL is paused, and how long it may
# take to answer once resumed.
PAUSED_WAIT_S = 2
RESUMED_ANSWER_S = 10

results = []


def check(name):
    def run(body):
        started = time.monotonic()
        try:
            body()
            results.append(True)
            print(f"PASS {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:
            results.append(False)
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        return body
    return run


def postgres_checks(pg):
    @check("postgres: create, insert, stop, start, read back")
    def _():
        pg.psql("CREATE TABLE records (id int PRIMARY KEY, value text)")
        pg.psql("INSERT INTO records VALUES (1, 'one'), (2, 'two')")
        port = pg.port
        pg.stop()
        assert not _accepts(port), "still accepting after stop()"
        pg.start()
        assert pg.port == port, f"port changed {port} -> {pg.port}"
        rows = pg.psql("SELECT id, value FROM records ORDER BY id")
        assert rows == "1|one\n2|two", rows

    @check("postgres: new_database() gives an empty database")
    def _():
        url = pg.new_database("isolated")
        assert url.endswith("/isolated"), url
        assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'records'", database="isolated") == "0"

    @check("postgres: a query waits while paused and answers after resume")
    def _():
        # A session opened before the pause, and a new connection during it.
        session = subprocess.Popen(
            ["psql", "-X", "-A", "-t", "-d", pg.url()], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        session.stdin.write("SELECT 'session ready';\n")
        session.stdin.flush()
        assert session.stdout.readline().strip() == "session ready"
        pg.pause()
        try:
            session.stdin.write("SELECT value FROM records WHERE id = 2;\n")
            session.stdin.flush()
            fresh = subprocess.Popen(
                ["psql", "-X", "-A", "-t", "-d", pg.url(), "-c", "SELECT count(*) FROM records"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(PAUSED_WAIT_S)
            assert fresh.poll() is None, f"new connection answered while paused: {fresh.communicate()}"
            assert session.poll() is None, "session ended while paused"
        finally:
            pg.resume()
        out, err = fresh.communicate(timeout=RESUMED_ANSWER_S)
        assert fresh.returncode == 0 and out.strip() == "2", (fresh.returncode, out, err)
        assert session.stdout.readline().strip() == "two"
        session.stdin.close()
        session.wait(timeout=RESUMED_ANSWER_S)


def seaweed_checks(s3):
    key = "round-trip/object.bin"
    # 1 MiB with no repeating pattern short enough to hide an off-by-one in a range.
    body = bytes((i * 7 + i // 251) % 256 for i in range(1 << 20))
    object_url = f"{s3.endpoint()}/{S3_BUCKET}/{key}"

    @check("seaweedfs: url() and env() have the agreed shape")
    def _():
        url = s3.url("test-1")
        expected = (f"s3://weir-test/test-1?endpoint=http://127.0.0.1:{s3.s3_port}"
                    "&region=us-east-1&allow_http=true")
        assert url == expected, url
        assert s3.env() == {"AWS_ACCESS_KEY_ID": "weir", "AWS_SECRET_ACCESS_KEY": "weir-secret"}

    @check("seaweedfs: unsigned and wrongly signed requests are refused")
    def _():
        status, _ = curl_s3("GET", object_url, secret_key="wrong")
        assert status == 403, status
        anonymous = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    f"{s3.endpoint()}/{S3_BUCKET}"], stdout=subprocess.PIPE, text=True)
        assert anonymous.stdout in ("401", "403"), anonymous.stdout

    @check("seaweedfs: PUT, ranged GET, stop, start, GET")
    def _():
        path = os.path.join(s3.root_dir, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        # -T, not --data-binary: curl 7.88 signs a --data-binary PUT in a way S3 refuses.
        status, answer = curl_s3("PUT", object_url, "-T", path)
        assert status == 200, (status, answer)
        status, part = curl_s3("GET", object_url, "-H", "Range: bytes=1000-1999")
        assert status == 206, (status, part[:200])
        assert part == body[1000:2000], "ranged GET returned other bytes"
        status, tail = curl_s3("GET", object_url, "-H", "Range: bytes=-10")
        assert status == 206 and tail == body[-10:], (status, tail)
        ports = dict(s3.ports)
        s3.stop()
        assert not _accepts(ports["s3"]), "still accepting after stop()"
        s3.start()
        assert s3.ports == ports, f"ports changed {ports} -> {s3.ports}"
        status, whole = curl_s3("GET", object_url)
        assert status == 200 and whole == body, (status, len(whole))
        status, listing = curl_s3("GET", f"{s3.endpoint()}/{S3_BUCKET}?list-type=2&prefix=round-trip%2F")
        assert status == 200 and key.encode() in listing, (status, listing[:300])


def cleanup_checks():
    @check("cleanup: SIGTERM to the owning process stops both servers and removes their directories")
    def _():
        here = os.path.dirname(os.path.abspath(__file__))
        owner = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time; sys.path.insert(0, sys.argv[1]); from services import *\n"
             "pg = Postgres(); s3 = Seaweed()\n"
             "print(pg.root_dir, pg.port, s3.root_dir, s3.s3_port, flush=True)\n"
             "time.sleep(600)", here],
            stdout=subprocess.PIPE, text=True)
        pg_dir, pg_port, s3_dir, s3_port = owner.stdout.readline().split()
        assert os.path.isdir(pg_dir) and os.path.isdir(s3_dir)
        assert _accepts(int(pg_port)) and _accepts(int(s3_port))
        owner.terminate()
        owner.wait(timeout=60)
        assert not os.path.exists(pg_dir), pg_dir
        assert not os.path.exists(s3_dir), s3_dir
        assert not _accepts(int(pg_port)), "postgres still listening"
        assert not _accepts(int(s3_port)), "weed still listening"


def with_postgres_checks():
    @check("with-postgres: runs the command with WEIR_TEST_POSTGRES_URL, exits with its status, stops the server")
    def _():
        here = os.path.dirname(os.path.abspath(__file__))
        psql = os.path.join(postgres_bin_dir(), "psql")
        script = (f'{psql} -X -At -d "$WEIR_TEST_POSTGRES_URL" -c "SELECT 1" && '
                  'echo "$WEIR_TEST_POSTGRES_URL" && exit 7')
        result = subprocess.run([sys.executable, os.path.join(here, "services.py"), "with-postgres", "--",
                                 "sh", "-c", script], stdout=subprocess.PIPE, text=True, timeout=120)
        assert result.returncode == 7, (result.returncode, result.stdout)
        answer, url = result.stdout.split()
        assert answer == "1", result.stdout
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert not _accepts(port), "the server outlived the command"
        usage = subprocess.run([sys.executable, os.path.join(here, "services.py")],
                               stderr=subprocess.PIPE, text=True)
        assert usage.returncode == 2 and "usage:" in usage.stderr, usage


def _accepts(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main():
    started = time.monotonic()
    with Postgres() as pg:
        print(f"postgres up in {time.monotonic() - started:.1f}s: {pg.url()}", flush=True)
        postgres_checks(pg)
    with_postgres_checks()
    started = time.monotonic()
    with Seaweed() as s3:
        print(f"seaweedfs up in {time.monotonic() - started:.1f}s: {s3.url('')}", flush=True)
        seaweed_checks(s3)
    cleanup_checks()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
