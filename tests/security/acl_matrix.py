#!/usr/bin/env python3
"""The ACL matrix: Apache Kafka and weir with the same ACLs, asked the same things by the
same principals through the Java client, must answer alike.

  acl_matrix.py [--broker kafka|weir|both] [--weir-bin PATH]

Each broker gets a SASL_PLAINTEXT listener (SCRAM-SHA-256), the ACL authorizer (Kafka's
StandardAuthorizer; weir's --authorizer acl) and super users admin and ANONYMOUS (the
PLAINTEXT listener, which Kafka's own controller connection and the harness use). As admin,
AclMatrix.java creates the topics, groups and ACLs (see its `setup`):

- alice has exactly the ACL each of her cases needs: DESCRIBE on m-describe, CREATE on the
  prefix m-create, DELETE on m-delete, WRITE on m-produce, READ on m-consume and group
  g-consume, WRITE on transactional id tx-alice, DESCRIBE on the cluster, and so on;
- carol reads every topic (a wildcard ALLOW) but one (a DENY on m-consume), may use group
  g-consume and her own transactional id;
- bob has none.

Then bob, carol and alice, in that order (alice's cases change things), each run every case:
listing, describing, creating and deleting topics, partitions and configs; idempotent, plain
and transactional produce; consuming with and without a group; committed offsets; groups
listed, described, altered, deleted; records deleted; transactions and producers described;
log dirs, reassignments, leader election; ACLs and SCRAM credentials. Each answer is "OK ..."
or the exception the client raised. Every answer must be the same from weir as from Kafka,
and a few must be what the matrix is for (alice allowed, bob refused), so a broken setup
cannot pass. With one broker only, only those are checked.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compat"))
import harness  # noqa: E402
from harness import KAFKA_DIR, WORK, Report, free_port, kafka_classpath  # noqa: E402

JAVA_CLASSES = os.path.join(WORK, "security", "acl-classes")
MECHANISM = "SCRAM-SHA-256"
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
ORDER = ["bob", "carol", "alice"]
SUPER_USERS = "User:admin;User:ANONYMOUS"

# Answers that show the matrix is working, whichever broker: (user, case, answer).
EXPECTED = [
    ("alice", "produce-idempotent", "OK"),
    ("bob", "produce-idempotent", "ERR TopicAuthorizationException"),
    ("alice", "consume-group", "OK records=3"),
    ("bob", "group-offsets-before", "ERR GroupAuthorizationException"),
    ("carol", "consume-group", "ERR TopicAuthorizationException"),
    ("alice", "transaction", "OK"),
    ("bob", "transaction", "ERR TransactionalIdAuthorizationException"),
    ("bob", "describe-topic", "ERR TopicAuthorizationException"),
    ("alice", "create-topic", "OK"),
    ("bob", "describe-acls", "ERR ClusterAuthorizationException"),
]


def add_scram_args():
    return [a for user, password in USERS.items()
            for a in ("--add-scram", f"{MECHANISM}=[name={user},password={password}]")]


class Kafka:
    name = "kafka"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kafka-acl-")
        self.port, self.sasl = free_port(), free_port()

    def bootstrap(self):
        return f"127.0.0.1:{self.sasl}"

    def start(self):
        lines = [
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"listener.name.sasl_plaintext.{MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users={SUPER_USERS}",
        ]
        extra = os.path.join(self.dir, "acl.properties")
        with open(extra, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ, KAFKA_EXTRA_LISTENERS=f"SASL_PLAINTEXT://127.0.0.1:{self.sasl}",
                   KAFKA_EXTRA_PROPERTIES=extra, KAFKA_FORMAT_ARGS=" ".join(add_scram_args()))
        subprocess.run([os.path.join(KAFKA_DIR, "start.sh"), str(self.port), self.dir], check=True,
                       timeout=180, env=env)

    def stop(self):
        subprocess.run([os.path.join(KAFKA_DIR, "stop.sh"), self.dir], check=True, timeout=120)


class Weir:
    name = "weir"

    def __init__(self, bin_path):
        self.weir = harness.Weir(bin_path)
        self.sasl = free_port()
        self.weir.extra = ["--listeners", f"PLAINTEXT://{self.weir.bootstrap},SASL_PLAINTEXT://127.0.0.1:{self.sasl}",
                           "--sasl-enabled-mechanisms", MECHANISM,
                           "--authorizer", "acl", "--super-users", SUPER_USERS] + add_scram_args()

    def bootstrap(self):
        return f"127.0.0.1:{self.sasl}"

    def start(self):
        self.weir.start()

    def stop(self):
        self.weir.stop()


def compile_java():
    cp = kafka_classpath()
    src = os.path.join(HERE, "AclMatrix.java")
    stamp = os.path.join(JAVA_CLASSES, "AclMatrix.class")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(src):
        os.makedirs(JAVA_CLASSES, exist_ok=True)
        out = subprocess.run(["javac", "-nowarn", "-d", JAVA_CLASSES, "-cp", cp, src], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"javac AclMatrix.java failed:\n{out.stderr}")
    return cp + os.pathsep + JAVA_CLASSES


def props(directory, bootstrap, user):
    path = os.path.join(directory, f"{user}.properties")
    with open(path, "w") as f:
        f.write(f"bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\n"
                f"sasl.mechanism={MECHANISM}\n"
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{user}" password="{USERS[user]}";\n')
    return path


def java(cp, *args, timeout=600):
    out = subprocess.run(["java", "-Xmx384m", "-cp", cp, "AclMatrix", *args], capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"AclMatrix {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out.stdout


def run_broker(broker, cp):
    """{user: {case: answer}} from one broker."""
    scratch = tempfile.mkdtemp(prefix=f"acl-{broker.name}-")
    broker.start()
    try:
        java(cp, "setup", props(scratch, broker.bootstrap(), "admin"))
        answers = {}
        for user in ORDER:
            out = java(cp, "run", props(scratch, broker.bootstrap(), user), user)
            answers[user] = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
            for case, answer in answers[user].items():
                print(f"  {broker.name} {user:5} {case}: {answer}", flush=True)
        for user in ("bob", "alice"):
            config = props(scratch, broker.bootstrap(), user)
            for case, tool, args in TOOLS:
                code, out = harness.kafka_tool(tool, "--bootstrap-server", broker.bootstrap(),
                                               "--command-config", config, *args)
                answers[user][case] = tool_answer(code, out)
                print(f"  {broker.name} {user:5} {case}: {answers[user][case]}", flush=True)
        return answers
    finally:
        broker.stop()


# Kafka's tools, as bob and alice after the Java cases: (case, tool, arguments).
TOOLS = [
    ("tool kafka-topics --list", "kafka-topics", ["--list"]),
    ("tool kafka-topics --describe", "kafka-topics", ["--describe", "--topic", "m-describe"]),
    ("tool kafka-consumer-groups --list", "kafka-consumer-groups", ["--list"]),
    ("tool kafka-consumer-groups --describe", "kafka-consumer-groups", ["--describe", "--group", "g-consume"]),
    ("tool kafka-acls --list", "kafka-acls", ["--list", "--topic", "m-describe"]),
]


def tool_answer(code, out):
    """A tool's exit code and the lines both brokers must agree on: exception names and
    names of topics and groups, not ids, offsets, hosts or client ids."""
    found = sorted(set(re.findall(r"\b(\w+(?:Authorization|Unknown\w*|NotFound)\w*Exception)\b", out))
                   | set(re.findall(r"\b(\w+ authorization failed)", out)))
    names = sorted(set(re.findall(r"\b([mg]-[a-z0-9-]+)\b", out)))
    return f"exit={code} errors={','.join(found)} names={','.join(names)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_broker_args(ap)
    args = ap.parse_args()
    cp = compile_java()
    r = Report()
    answers = {}
    for name in harness.broker_names(args):
        broker = Kafka() if name == "kafka" else Weir(args.weir_bin)
        answers[name] = run_broker(broker, cp)
        for user, case, expected in EXPECTED:
            got = answers[name].get(user, {}).get(case)
            r.check(f"{name}: {user} {case} is {expected}", got == expected, f"got {got}")
    if len(answers) == 2:
        for user in ORDER:
            for case, k in answers["kafka"][user].items():
                w = answers["weir"][user].get(case)
                r.check(f"{user} {case}: weir answers as Kafka does", w == k, f"kafka: {k}\nweir:  {w}")
    r.finish()


if __name__ == "__main__":
    main()
