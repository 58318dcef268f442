#!/usr/bin/env python3
"""The admin APIs a single node answers without doing anything, differential against Apache
Kafka: OffsetForLeaderEpoch, DescribeTopicPartitions, ElectLeaders, AlterPartitionReassignments,
ListPartitionReassignments, and the features ApiVersions reports (what describeFeatures reads).

  admin_apis.py [--broker weir|kafka|both] [--weir-bin PATH]

Two clients ask, the same way on both brokers:

  java   clients/java/AdminApis.java prints one line per observation (describeTopics one page
         and one partition a page at a time, electLeaders, alterPartitionReassignments,
         listPartitionReassignments, describeFeatures, and a consumer seeking with a leader
         epoch, inside the log and past its end); each group of lines must be what Apache
         Kafka 4.4 answers (EXPECTED below, written from a run against it)
  tools  Kafka's kafka-topics --describe, kafka-leader-election, kafka-reassign-partitions
         (--list, --execute to this node and to a broker that does not exist, --verify,
         --cancel) and kafka-features describe: exit code and output

The broker's node id (weir is 0, the KRaft Kafka of kafka/start.sh is 1) is written N, topic
ids and the features' epoch (the metadata log offset on Kafka) are left out. With --broker
both, each broker's normalised output must also equal the other's, less the differences
listed in KNOWN_DIFFERENCES.md (share and streams groups, which weir has not).

Prints each check, and "N passed, N failed"; exits non-zero when a check fails.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Report, kafka_tool  # noqa: E402

TOPIC_OPS = "[READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS]"
NOT_REGISTERED = ("InvalidReplicaAssignmentException: The manual partition assignment includes broker 7, "
                  "but no such broker is registered.")
NO_PARTITION = "UnknownTopicOrPartitionException: Unable to find partition P-a:5."
NO_TOPIC = "UnknownTopicOrPartitionException: Unable to find a topic named P-none."


def _describe_lines():
    lines = []
    for limit in (2000, 1):
        for topic, partitions in (("P-a", 2), ("P-b", 1)):
            lines.append(f"describe limit={limit} {topic} internal=false ops={TOPIC_OPS}")
            lines += [f"describe limit={limit} {topic}-{p} leader=N replicas=N isr=N elr= lastKnownElr="
                      for p in range(partitions)]
    lines.append("describe unknown: UnknownTopicOrPartitionException: This server does not host this "
                 "topic-partition.")
    return lines


def _elect_lines():
    lines = []
    for kind in ("PREFERRED", "UNCLEAN"):
        lines += [f"elect {kind} P-a-0: ElectionNotNeededException: Leader election not needed for topic partition.",
                  f"elect {kind} P-none-0: UnknownTopicOrPartitionException: No such topic as P-none",
                  f"elect {kind} P-a-5: UnknownTopicOrPartitionException: No such partition as P-a-5",
                  f"elect {kind} all: 0 of this run's partitions listed, 0 errors"]
    return lines


def _reassign_lines():
    lines = []
    for case, on_partition in (("to N", "ok"), ("to 7", NOT_REGISTERED), ("to N,7", NOT_REGISTERED),
                               ("to N,N", "InvalidReplicaAssignmentException: The manual partition assignment "
                                          "includes the broker N more than once."),
                               ("cancel", "NoReassignmentInProgressException: No partition reassignment is in "
                                          "progress.")):
        lines += [f"reassign P-a-0 {case}: {on_partition}", f"reassign P-a-5 {case}: {NO_PARTITION}",
                  f"reassign P-none-0 {case}: {NO_TOPIC}"]
    return lines + ["reassign list all: 0", "reassign list P-a-0: 0"]


# Feature name -> (supported range, finalized range or None), as each broker reports them.
KAFKA_FEATURES = {
    "eligible.leader.replicas.version": ("0..1", "1..1"),
    "group.version": ("0..1", "1..1"),
    "kraft.version": ("0..1", "1..1"),
    "metadata.version": ("7..33", "33..33"),
    "share.version": ("0..2", "2..2"),
    "streams.version": ("0..1", "1..1"),
    "transaction.version": ("0..2", "2..2"),
}
# weir has neither share groups (KIP-932) nor streams groups (KIP-1071): level 0, not finalized.
WEIR_FEATURES = dict(KAFKA_FEATURES, **{"share.version": ("0..0", None), "streams.version": ("0..0", None)})


def _feature_lines(features):
    lines = [f"features supported {n} {s}" for n, (s, _) in sorted(features.items())]
    lines += [f"features finalized {n} {f}" for n, (_, f) in sorted(features.items()) if f]
    return lines + ["features epoch present=true"]


EPOCH_LINES = [
    "epoch seek 3 with epoch 0: read [3:v3:epoch=0, 4:v4:epoch=0]",
    "epoch seek 50 with epoch 0: LogTruncationException divergent="
    "OffsetAndMetadata{offset=5, leaderEpoch=0, metadata=''}",
]


def expected(broker_name):
    return {
        "describe": _describe_lines(),
        "elect": _elect_lines(),
        "reassign": _reassign_lines(),
        "features": _feature_lines(WEIR_FEATURES if broker_name == "weir" else KAFKA_FEATURES),
        "epoch": EPOCH_LINES,
    }


def run_java(report, broker):
    """Runs AdminApis and checks each group of its lines; returns them for the cross-check."""
    prefix = f"admin-{uuid.uuid4().hex[:8]}"
    cmd = ["java", "-Xmx256m", "-cp", harness.java_classpath(), "AdminApis", broker.bootstrap, prefix]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    by_group = {}
    for line in lines:
        by_group.setdefault(line.split(" ", 1)[0], []).append(line)
    for group, want in expected(broker.name).items():
        got = by_group.get(group, [])
        diff = [f"- {l}" for l in want if l not in got] + [f"+ {l}" for l in got if l not in want]
        report.check(f"[{broker.name}] java {group}", got == want,
                     "\n    " + "\n    ".join(diff or [f"order differs: {got}"]) +
                     ("" if r.returncode == 0 else f"\n    exit {r.returncode}: {r.stderr.strip()[-800:]}"))
    return lines


def normalise(text, node):
    """Tool output with the node id as N, topic ids and the features' epoch left out."""
    text = re.sub(r"TopicId: \S+", "TopicId: -", text)
    text = re.sub(r"Epoch: \d+", "Epoch: -", text)
    text = re.sub(r'"log_dirs":\["[^"]*"\]', '"log_dirs":["-"]', text)
    text = re.sub(rf"(Leader|Replicas|Isr): {node}\b", r"\1: N", text)
    text = re.sub(rf"broker {node}\b", "broker N", text)
    text = re.sub(rf"\"replicas\":\[{node}\]", '"replicas":[N]', text)
    # Topic configs are DescribeConfigs' business (Kafka 4.4 sets min.insync.replicas for
    # the whole cluster at format time); this script checks the partition lines.
    text = re.sub(r"Configs: .*", "Configs: -", text)
    return "\n".join(l.rstrip() for l in text.splitlines() if not l.lstrip().startswith("at "))


def run_tools(report, broker, node):
    """Kafka's tools; each check is (exit code, normalised output). Returns them by name."""
    b = broker.bootstrap
    topic = f"tools-{uuid.uuid4().hex[:8]}"
    outputs = {}
    kafka_tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "2")
    work = tempfile.mkdtemp(prefix="admin-apis-")

    def plan(name, replicas):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            json.dump({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": replicas}]}, f)
        return path

    same, elsewhere = plan("same.json", [node]), plan("elsewhere.json", [7])

    def tool(check, name, *args, want_rc=0, want=()):
        rc, text = kafka_tool(name, "--bootstrap-server", b, *args)
        text = normalise(text.replace(topic, "T"), node)
        outputs[check] = (rc, text)
        missing = [w for w in want if w not in text]
        report.check(f"[{broker.name}] tool {check}", rc == want_rc and not missing,
                     f"exit {rc} (want {want_rc}); missing {missing}; output:\n{text}")

    tool("kafka-topics --describe", "kafka-topics", "--describe", "--topic", topic,
         want=["Topic: T\tTopicId: -\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: -",
               "\tTopic: T\tPartition: 0\tLeader: N\tReplicas: N\tIsr: N\tElr: \tLastKnownElr:",
               "\tTopic: T\tPartition: 1\tLeader: N\tReplicas: N\tIsr: N\tElr: \tLastKnownElr:"])
    tool("kafka-leader-election preferred all", "kafka-leader-election", "--election-type", "preferred",
         "--all-topic-partitions")
    tool("kafka-leader-election preferred one", "kafka-leader-election", "--election-type", "preferred",
         "--topic", topic, "--partition", "0", want=["Valid replica already elected for partitions T-0"])
    tool("kafka-leader-election unclean one", "kafka-leader-election", "--election-type", "unclean",
         "--topic", topic, "--partition", "0", want=["Valid replica already elected for partitions T-0"])
    tool("kafka-leader-election unknown topic", "kafka-leader-election", "--election-type", "preferred",
         "--topic", topic + "-none", "--partition", "0", want_rc=1,
         want=["UnknownTopicOrPartitionException: No such topic as T-none", "1 replica(s) could not be elected"])
    tool("kafka-reassign-partitions --list", "kafka-reassign-partitions", "--list",
         want=["No partition reassignments found."])
    tool("kafka-reassign-partitions --execute to this node", "kafka-reassign-partitions", "--execute",
         "--reassignment-json-file", same, want=["Successfully started partition reassignment for T-0"])
    tool("kafka-reassign-partitions --verify", "kafka-reassign-partitions", "--verify",
         "--reassignment-json-file", same,
         want=["Reassignment of partition T-0 is completed.", "Clearing broker-level throttles on broker N",
               "Clearing topic-level throttles on topic T"])
    tool("kafka-reassign-partitions --execute to broker 7", "kafka-reassign-partitions", "--execute",
         "--reassignment-json-file", elsewhere, want_rc=1, want=["Error: Unknown broker id 7"])
    tool("kafka-reassign-partitions --cancel", "kafka-reassign-partitions", "--cancel",
         "--reassignment-json-file", same, want=["None of the specified partition reassignments are active."])
    rc, text = kafka_tool("kafka-features", "--bootstrap-server", b, "describe")
    text = normalise(text, node)
    outputs["kafka-features describe"] = (rc, text)
    features = WEIR_FEATURES if broker.name == "weir" else KAFKA_FEATURES
    names = re.findall(r"Feature: (\S+)", text)
    report.check(f"[{broker.name}] tool kafka-features describe", rc == 0 and names == sorted(features)
                 and "SupportedMaxVersion: 4.4-IV2" in text and "FinalizedVersionLevel: 4.4-IV2" in text,
                 f"exit {rc}; features {names}; output:\n{text}")
    kafka_tool("kafka-topics", "--bootstrap-server", b, "--delete", "--topic", topic)
    return outputs


# Lines that differ between the brokers by design (KNOWN_DIFFERENCES.md): share and streams groups.
def _comparable(line):
    return not re.search(r"\b(share|streams)\.version\b", line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_broker_args(ap)
    a = ap.parse_args()
    print(f"clients: java {harness.VERSIONS['java']()}, Kafka's tools {harness.kafka_version()}", flush=True)
    report = Report()
    seen = {}
    for bname, broker in harness.each_broker(a):
        node = 0 if bname == "weir" else 1
        java = run_java(report, broker)
        tools = run_tools(report, broker, node)
        seen[bname] = (java, tools)
    if len(seen) == 2:
        (kj, kt), (wj, wt) = seen["kafka"], seen["weir"]
        kj, wj = [l for l in kj if _comparable(l)], [l for l in wj if _comparable(l)]
        report.check("[both] java lines equal", kj == wj,
                     "\n    " + "\n    ".join([f"kafka only: {l}" for l in kj if l not in wj] +
                                            [f"weir only: {l}" for l in wj if l not in kj]))
        for check in kt:
            k = (kt[check][0], "\n".join(l for l in kt[check][1].splitlines() if _comparable(l)))
            w = (wt[check][0], "\n".join(l for l in wt[check][1].splitlines() if _comparable(l)))
            report.check(f"[both] tool {check} equal", k == w, f"kafka {k}\n    weir {w}")
    report.finish()


if __name__ == "__main__":
    main()
