"""Real PostgreSQL and SeaweedFS (S3) servers for the cluster-mode tests.

Each class owns one throwaway server in its own temporary directory, started and stopped
by the test that holds it:

    with Postgres() as pg, Seaweed() as s3:
        pg.url()            # postgresql://weir@127.0.0.1:PORT/postgres
        s3.url("test-1")    # s3://weir-test/test-1?endpoint=...&region=us-east-1&allow_http=true
        s3.env()            # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the brokers

`stop()` and `start()` restart a server on the same data, `Postgres.pause()`/`resume()`
freeze it with SIGSTOP/SIGCONT (a hung server, not a refused one), and `close()` stops it
and removes its directory. Every server still open when the interpreter exits (normally,
by an exception or by SIGTERM) is closed then.

`tests/cluster/install.sh` installs both; this module finds PostgreSQL on PATH or under
/usr/lib/postgresql/*/bin and `weed` in the install script's cache (or $WEIR_TEST_WEED).
"""

import atexit
import glob
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# How long a server may take to answer after it is started, and how often we ask.
READY_TIMEOUT_S = 60
READY_POLL_S = 0.1
# How many times a start is retried with fresh ports when a chosen port was taken
# between choosing it and the server binding it.
START_ATTEMPTS_MAX = 3

S3_ACCESS_KEY = "weir"
S3_SECRET_KEY = "weir-secret"
S3_BUCKET = "weir-test"
S3_REGION = "us-east-1"

_open_services = []


def _close_all():
    for service in list(_open_services):
        try:
            service.close()
        except Exception as error:  # Keep closing the others.
            print(f"services: closing {service!r} failed: {error}", file=sys.stderr)


atexit.register(_close_all)
# SIGTERM's default action skips atexit; turn it into an ordinary exit so the servers go
# with us. A handler someone else installed is left alone.
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pairs(count, offset=10000):
    """`count` distinct ports p, each with p + offset free too (SeaweedFS puts a server's
    gRPC port at its HTTP port + 10000)."""
    chosen = []
    for _ in range(10000):
        port = random.randint(20000, 55535 - offset)
        if port in chosen or port + offset in chosen or any(port == c + offset for c in chosen):
            continue
        if _port_is_free(port) and _port_is_free(port + offset):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free port pairs found")


def _wait_until(what, ready, process, log_path, timeout_s=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready:\n{_tail(log_path)}")
        if ready():
            return
        time.sleep(READY_POLL_S)
    raise RuntimeError(f"{what} not ready after {timeout_s}s:\n{_tail(log_path)}")


def _tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _end_process(process, timeout_s=10):
    """Waits for `process`, killing its whole process group if it does not end in time."""
    if process is None or process.poll() is not None:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


class _Service:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin_dir():
    """The directory holding initdb, pg_ctl and postgres: PATH first, then the newest
    /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    candidates = [os.path.dirname(os.path.realpath(on_path))] if on_path else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0,
                         reverse=True)
    for d in candidates:
        if all(os.access(os.path.join(d, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    raise RuntimeError("PostgreSQL not found (initdb, pg_ctl, postgres); run tests/cluster/install.sh")


def _ensure_postgres_user():
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "postgres"], check=True)


class Postgres(_Service):
    """A throwaway PostgreSQL cluster: trust authentication, superuser `weir`, listening
    on a free 127.0.0.1 port. initdb refuses to run as root, so under root the directory
    belongs to the `postgres` user and every server command runs through runuser."""

    USER = "weir"

    def __init__(self, start=True, durable=False):
        """`durable`: commits are fsynced, as in production (benchmarks); tests run with
        fsync off, since they never crash the machine PostgreSQL runs on."""
        self.durable = durable
        self.bin_dir = postgres_bin_dir()
        self.as_root = os.geteuid() == 0
        self.root_dir = tempfile.mkdtemp(prefix="weir-pg-")
        self.data_dir = os.path.join(self.root_dir, "data")
        self.log_path = os.path.join(self.root_dir, "postgres.log")
        self.port = None
        self.process = None
        self.paused = False
        self.closed = False
        _open_services.append(self)
        if self.as_root:
            _ensure_postgres_user()
            # The temp dir is 0700 and root's; hand it over so the server can use it.
            shutil.chown(self.root_dir, "postgres", "postgres")
        self._run(["initdb", "-D", self.data_dir, "-A", "trust", "-U", self.USER, "-E", "UTF8",
                   "--no-sync"])
        if start:
            self.start()

    def __repr__(self):
        return f"Postgres(port={self.port}, dir={self.root_dir})"

    def _command(self, tool, args):
        command = [os.path.join(self.bin_dir, tool)] + args
        return ["runuser", "-u", "postgres", "--"] + command if self.as_root else command

    def _run(self, args):
        result = subprocess.run(self._command(args[0], args[1:]), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}")
        return result.stdout

    def start(self):
        """Starts the server on the existing data; keeps the port it had before, if any."""
        assert not self.closed, "start after close"
        assert self.process is None, "already started"
        for attempt in range(START_ATTEMPTS_MAX):
            port = self.port or free_port()
            log = open(self.log_path, "a")
            # Its own session, so a Ctrl-C meant for the test does not stop the server
            # before the test's own cleanup does.
            self.process = subprocess.Popen(
                self._command("postgres", [
                    "-D", self.data_dir, "-p", str(port), "-k", self.root_dir,
                    "-c", "listen_addresses=127.0.0.1",
                    # Tests never crash PostgreSQL's host; a clean stop still flushes.
                    "-c", f"fsync={'on' if self.durable else 'off'}", "-c", "max_connections=200"]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            try:
                _wait_until(f"postgres on port {port}", lambda: self._accepts(port), self.process,
                            self.log_path)
                self.port = port
                return
            except RuntimeError:
                _end_process(self.process, timeout_s=0)
                self.process = None
                if self.port is not None or attempt == START_ATTEMPTS_MAX - 1:
                    raise

    def _accepts(self, port):
        result = subprocess.run([os.path.join(self.bin_dir, "pg_isready"), "-q", "-h", "127.0.0.1",
                                 "-p", str(port), "-U", self.USER, "-d", "postgres"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0

    def url(self, database="postgres"):
        assert self.port is not None, "never started"
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql, database="postgres", timeout_s=None):
        """Runs `sql` with psql and returns its unaligned, tuples-only output."""
        result = subprocess.run(
            [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(database), "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    def new_database(self, name=None):
        """Creates an empty database (one per test) and returns its URL."""
        name = name or f"test_{os.getpid()}_{random.randrange(1 << 30)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        """Stops the server cleanly (fast mode: open sessions are ended); data stays."""
        if self.process is None:
            return
        self.resume()
        self._run(["pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "30", "stop"])
        _end_process(self.process)
        self.process = None

    def _postmaster_pids(self):
        """The postmaster and every process it forked. Each backend calls setsid(), so
        one signal to the postmaster's process group would not reach them."""
        with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # The process ended while we looked.
            if int(fields[1]) == postmaster:
                children.append(int(stat.split("/")[2]))
        return postmaster, children

    def pause(self):
        """Freezes the server and all its backends with SIGSTOP: connections are
        accepted by the kernel but nothing answers until resume()."""
        assert self.process is not None, "pause of a stopped server"
        postmaster, children = self._postmaster_pids()
        # The postmaster first, so it forks nothing we would miss.
        os.kill(postmaster, signal.SIGSTOP)
        for pid in children:
            os.kill(pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if not self.paused:
            return
        postmaster, children = self._postmaster_pids()
        for pid in children + [postmaster]:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused = False

    def close(self):
        if self.closed:
            return
        try:
            self.stop()
        except Exception:
            # A server that will not stop cleanly is killed: close() must leave nothing.
            if self.process is not None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _kill_postmaster(self.data_dir)
                _end_process(self.process)
                self.process = None
        self.closed = True
        shutil.rmtree(self.root_dir, ignore_errors=True)
        if self in _open_services:
            _open_services.remove(self)


def _kill_postmaster(data_dir):
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGQUIT)  # Immediate shutdown; the postmaster ends its backends.
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------
# SeaweedFS


def weed_path():
    """The `weed` binary: $WEIR_TEST_WEED, else the one install.sh built for the pinned
    module version and the current Go version."""
    explicit = os.environ.get("WEIR_TEST_WEED")
    if explicit:
        return explicit
    version = None
    with open(os.path.join(HERE, "seaweedfs", "go.mod")) as f:
        for line in f:
            words = line.split()
            if "github.com/seaweedfs/seaweedfs" in words:
                version = words[-1]
                break
    assert version, "seaweedfs/go.mod names no seaweedfs version"
    go_version = subprocess.run(["go", "env", "GOVERSION"], stdout=subprocess.PIPE, text=True,
                                check=True).stdout.strip()
    cache = os.environ.get("WEIR_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "weir-test")
    path = os.path.join(cache, "seaweedfs", f"{version}-{go_version}", "weed")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} missing; run tests/cluster/install.sh")
    return path


def curl_s3(method, url, *extra, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, timeout_s=10):
    """One SigV4-signed request with curl; returns (status, body bytes)."""
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", str(timeout_s),
         "--aws-sigv4", f"aws:amz:{S3_REGION}:s3", "-u", f"{access_key}:{secret_key}", *extra, url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        return None, result.stderr
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


class Seaweed(_Service):
    """A throwaway SeaweedFS (master, volume, filer, S3 gateway in one process) with one
    static S3 identity and the bucket `weir-test`. Every port is chosen and passed
    explicitly."""

    MODES = ("mini", "server")
    STOP_GRACE_S = 3

    def __init__(self, start=True, mode=None):
        # `mini` by default: it restarts in a few seconds, where `server` (same flags)
        # takes about 25 s before objects written before the stop can be read again.
        self.mode = mode or os.environ.get("WEIR_TEST_SEAWEED_MODE", "mini")
        assert self.mode in self.MODES, f"mode {self.mode} not in {self.MODES}"
        self.weed = weed_path()
        self.root_dir = tempfile.mkdtemp(prefix="weir-s3-")
        self.data_dir = os.path.join(self.root_dir, "data")
        os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.root_dir, "weed.log")
        self.config_path = os.path.join(self.root_dir, "s3.json")
        with open(self.config_path, "w") as f:
            json.dump({"identities": [{
                "name": "weir",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        self.ports = None
        self.process = None
        self.closed = False
        _open_services.append(self)
        if start:
            self.start()

    def __repr__(self):
        return f"Seaweed(ports={self.ports}, dir={self.root_dir})"

    @property
    def s3_port(self):
        return self.ports["s3"]

    def endpoint(self):
        return f"http://127.0.0.1:{self.s3_port}"

    def url(self, prefix):
        """The object_store URL of `prefix` in the test bucket."""
        return (f"s3://{S3_BUCKET}/{prefix.strip('/')}?endpoint={self.endpoint()}"
                f"&region={S3_REGION}&allow_http=true")

    def env(self):
        return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}

    def _command(self, ports):
        """`weed mini` or `weed server -s3`: master, volume, filer and S3 gateway in one
        process, every listener on 127.0.0.1 at a port we chose, everything optional off
        (WebDAV, admin UI, Iceberg and Lance catalogs, telemetry to the project)."""
        common = ["-dir=" + self.data_dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                  f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
                  f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}",
                  f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
                  f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3'] + 10000}",
                  "-s3.port.iceberg=0", "-s3.port.lance=0",
                  "-s3.config=" + self.config_path,
                  # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them ours.
                  "-filer.localSocket=" + os.path.join(self.root_dir, "filer.sock"),
                  "-s3.localSocket=" + os.path.join(self.root_dir, "s3.sock"),
                  "-master.volumeSizeLimitMB=64", "-master.telemetry=false", "-webdav=false",
                  # The volume server otherwise waits 10 s (server) before it stops.
                  "-volume.preStopSeconds=0"]
        if self.mode == "mini":
            # The admin server's gRPC side runs even without its UI, on fixed ports
            # unless told otherwise.
            return [self.weed, "mini", *common, "-admin.ui=false", "-bucket=" + S3_BUCKET,
                    f"-admin.port={ports['admin']}", f"-admin.port.grpc={ports['admin'] + 10000}",
                    "-admin.port.legacy=0"]
        return [self.weed, "server", *common, "-filer", "-s3", "-volume.max=0"]

    def start(self):
        """Starts the server on the existing data; keeps its ports, if it had them."""
        assert not self.closed, "start after close"
        assert self.process is None, "already started"
        for attempt in range(START_ATTEMPTS_MAX):
            names = ("master", "volume", "filer", "s3") + (("admin",) if self.mode == "mini" else ())
            ports = self.ports or dict(zip(names, free_port_pairs(len(names))))
            log = open(self.log_path, "a")
            self.process = subprocess.Popen(self._command(ports), cwd=self.root_dir,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self.ports = ports
            try:
                _wait_until(f"weed on S3 port {ports['s3']}", self._bucket_ready, self.process,
                            self.log_path)
                return
            except RuntimeError:
                self._kill()
                if attempt == START_ATTEMPTS_MAX - 1 or os.path.exists(os.path.join(self.data_dir, ".started")):
                    raise
                self.ports = None
        # Not reached: the last attempt raises.

    def _bucket_ready(self):
        """True once the master knows a volume server (so reads and writes of objects
        work, not only bucket metadata: after a restart the volume server registers some
        seconds after the S3 gateway answers) and a signed request answers 200 for the
        bucket, creating it on the way."""
        status_url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        try:
            with urllib.request.urlopen(status_url, timeout=2) as answer:
                topology = json.load(answer)["Topology"]
            nodes = [node for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []
                     for node in rack.get("DataNodes") or []]
        except (OSError, ValueError, KeyError):
            return False
        if not nodes:
            return False
        status, _ = curl_s3("HEAD", f"{self.endpoint()}/{S3_BUCKET}", "-I", timeout_s=2)
        if status == 200:
            open(os.path.join(self.data_dir, ".started"), "w").close()
            return True
        if status == 404:
            curl_s3("PUT", f"{self.endpoint()}/{S3_BUCKET}", timeout_s=5)
        return False

    def _kill(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self):
        # weed puts a Unix socket per gRPC port in /tmp whatever its flags say.
        for port in self.ports.values():
            for path in glob.glob(f"/tmp/seaweedfs-*-grpc-{port + 10000}.sock"):
                try:
                    os.remove(path)
                except OSError:
                    pass

    def stop(self):
        """Stops the server: SIGTERM, then SIGKILL after STOP_GRACE_S (weed's shutdown
        can hang with the master still up); data stays. Objects acknowledged before
        survive a kill, as they would a crash."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _end_process(self.process, timeout_s=self.STOP_GRACE_S)
        self.process = None
        self._remove_grpc_sockets()

    def close(self):
        if self.closed:
            return
        self.stop()
        self.closed = True
        shutil.rmtree(self.root_dir, ignore_errors=True)
        if self in _open_services:
            _open_services.remove(self)


# ---------------------------------------------------------------------------------------
# Command line

USAGE = """usage: python3 tests/cluster/services.py with-postgres -- COMMAND [ARG...]
       python3 tests/cluster/services.py with-services -- COMMAND [ARG...]

Starts a throwaway PostgreSQL, runs COMMAND with WEIR_TEST_POSTGRES_URL set to its
`postgres` database (a superuser's: tests create their own databases there), stops the
server and exits with COMMAND's status. `with-services` also starts SeaweedFS and sets
WEIR_TEST_S3_URL (a prefix in its bucket, for tests to put their own prefixes under) and
the AWS credentials it takes."""


def with_postgres(command):
    """Runs `command` beside a throwaway PostgreSQL; returns its exit status (128 + the
    signal's number if a signal ended it, as a shell reports it)."""
    with Postgres() as pg:
        env = dict(os.environ, WEIR_TEST_POSTGRES_URL=pg.url())
        print(f"services: PostgreSQL at {pg.url()}", file=sys.stderr, flush=True)
        status = subprocess.run(command, env=env).returncode
    return 128 - status if status < 0 else status


def with_services(command):
    """Runs `command` beside a throwaway PostgreSQL and SeaweedFS; returns its exit
    status as `with_postgres` does."""
    with Postgres() as pg, Seaweed() as s3:
        env = dict(os.environ, WEIR_TEST_POSTGRES_URL=pg.url(),
                   WEIR_TEST_S3_URL=s3.url("cargo-tests"), **s3.env())
        print(f"services: PostgreSQL at {pg.url()}, S3 at {s3.endpoint()}", file=sys.stderr,
              flush=True)
        status = subprocess.run(command, env=env).returncode
    return 128 - status if status < 0 else status


def main(argv):
    if len(argv) >= 3 and argv[0] == "with-postgres" and argv[1] == "--":
        return with_postgres(argv[2:])
    if len(argv) >= 3 and argv[0] == "with-services" and argv[1] == "--":
        return with_services(argv[2:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
