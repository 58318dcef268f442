#!/usr/bin/env python3
"""Crash test: a SCRAM credential that Apache Kafka's own kafka-configs tool was told it
had set survives kill -9.

Each round starts weir on a free loopback port with a fresh data directory, adds a
SCRAM-SHA-256 credential for a new user with `kafka-configs --alter --add-config`, kills
weir with SIGKILL the moment the tool returns, restarts it on the same data directory, and
describes the users' credentials: the user must be there with its mechanism and iteration
count, along with every user added in earlier rounds, and the keys weir stored
(meta/catalog.json) must be the ones RFC 5802 derives from the password and the salt
Kafka's Admin client chose, so a client logging in with that password will be accepted. The check describes with
`kafka-configs --describe --entity-type users` when weir answers the quota lookup that tool
makes first, and otherwise with librdkafka's Admin client (confluent-kafka), which asks
DescribeUserScramCredentials alone. Prints one line per round and ends with
"N passed, M failed".

Usage: scram_crash.py WEIR_BIN [ROUNDS]
"""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "compat", "kafka", "tool")
START_TIMEOUT_S = 15
TOOL_TIMEOUT_S = 120


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


def tool(*args):
    out = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    return out.returncode, out.stdout + out.stderr


def described_with_tool(bootstrap):
    """{user: {mechanism: iterations}} from kafka-configs, or None if the tool failed."""
    rc, out = tool("kafka-configs", "--bootstrap-server", bootstrap, "--describe", "--entity-type", "users")
    if rc != 0:
        return None, out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
    users = {}
    for line in out.splitlines():
        m = re.match(r"SCRAM credential configs for user-principal '(.*)' are (.*)$", line)
        if m:
            users[m.group(1)] = {mech: int(it) for mech, it in re.findall(r"(SCRAM-SHA-\d+)=iterations=(\d+)", m.group(2))}
    return users, None


def described_with_librdkafka(bootstrap):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    users = {}
    for user, future in admin.describe_user_scram_credentials().result(30).items():
        users[user] = {str(i.mechanism).split(".")[-1].replace("_", "-"): i.iterations
                       for i in future.scram_credential_infos}
    return users


def wrong_keys(data_dir, passwords):
    """The users whose stored SCRAM-SHA-256 keys do not derive from their password."""
    with open(os.path.join(data_dir, "meta", "catalog.json")) as f:
        stored = json.load(f).get("scram_credentials", {})
    wrong = []
    for user, password in passwords.items():
        cred = stored.get(user, {}).get("SCRAM-SHA-256")
        if cred is None:
            wrong.append(user)
            continue
        salt = base64.b64decode(cred["salt"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, cred["iterations"])
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        if (base64.b64decode(cred["stored_key"]) != hashlib.sha256(client_key).digest()
                or base64.b64decode(cred["server_key"]) != server_key):
            wrong.append(user)
    return wrong


def main():
    bin_path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"SCRAM credential crash test: {rounds} rounds")
    passed = failed = 0
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "weir.log"), "ab") as log:
        data_dir = os.path.join(tmp, "data")
        added, passwords = {}, {}
        for n in range(rounds):
            proc = None
            try:
                user, iterations = f"alice{n}", 4096 * (1 + n % 4)
                proc = start(bin_path, port, data_dir, log)
                rc, out = tool("kafka-configs", "--bootstrap-server", bootstrap, "--alter", "--add-config",
                               f"SCRAM-SHA-256=[iterations={iterations},password=secret-{n}]",
                               "--entity-type", "users", "--entity-name", user)
                # Killed the moment the tool says it is done: the credential must be on disk.
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if rc != 0:
                    raise RuntimeError(f"kafka-configs --alter failed: {out.strip()}")
                added[user] = {"SCRAM-SHA-256": iterations}
                passwords[user] = f"secret-{n}"
                proc = start(bin_path, port, data_dir, log)
                users, tool_error = described_with_tool(bootstrap)
                how = "kafka-configs"
                if users is None:
                    users, how = described_with_librdkafka(bootstrap), f"librdkafka (kafka-configs: {tool_error})"
                lost = {u: m for u, m in added.items() if users.get(u) != m}
                wrong = wrong_keys(data_dir, passwords)
                ok = not lost and not wrong
                why = (f"{len(added)} credential(s) kept with keys that match their passwords, described by {how}"
                       if ok else
                       f"after the restart {users}, expected {added} (described by {how}); wrong keys for {wrong}")
            except Exception as e:  # a round that cannot run is a failure, never a skip
                ok, why = False, f"round error: {e}"
            finally:
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            print(f"{'PASS' if ok else 'FAIL'} kill-9 round {n + 1}: {why}", flush=True)
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
