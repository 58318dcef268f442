#!/usr/bin/env python3
"""Apache Kafka's own admin tools against weir and against Apache Kafka, side by side: every
invocation below runs on both brokers, and weir's exit code and output must equal Kafka's
once the parts that legitimately differ are normalised.

  tools.py [--broker weir|kafka|both] [--weir-bin PATH] [--only TOOL|NAME[,...]] [--show]
           [--jvm-per-tool]

The tools run in one JVM per broker (kafka/ToolRunner.java), which keeps the whole run
well under a minute; --jvm-per-tool starts each in its own JVM through kafka/tool instead.

Each side gets one broker and the same fixtures, made with confluent-kafka before the first
tool runs: a topic of 3 partitions with 10 records each at known timestamps, a topic for
delete-records, an empty classic group with committed offsets, and two live groups (a
classic member and a consumer-protocol member). The invocations then run in order on each
broker (the two sides at the same time, each on its own broker), so a create, alter or
delete changes both brokers' state alike.

What normalising removes (see `normalise`): host:port, the node id (weir is node 0, the
KRaft Kafka of kafka/start.sh is node 1), cluster, topic and member ids, log directories,
sizes in bytes, the finalized features' epoch, runs of spaces (column widths follow the
content), and Java stack frames (the client's, not the broker's). Everything else must
match.

kafka-broker-api-versions is compared per API, one check per line: an API matches when
both brokers call it UNSUPPORTED or both print the same "MIN to MAX [usable: U]". An API
whose line differs is a failure unless API_VERSIONS_EXPECTED names it with its reason.

A known difference is listed in DIFFERENCES with a tag, a reason and the substitutions that
remove exactly it from both outputs; EXPECTED names the differences each invocation shows.
An invocation must match once those are removed, so the rest of its output still counts:

  documented   written down in KNOWN_DIFFERENCES.md ("Differences outside the harness
               checks"); printed with the raw diff as XFAIL, not counted as a failure
  pending-api  needs an API weir does not have yet and another change is adding; XFAIL
               until it lands, then XPASS says to remove the entry

A documented difference that no longer shows (XPASS) is a failure: the list and the
document are then out of date. With --broker weir or kafka nothing is compared: each
invocation's exit code and normalised output are printed, and only a tool that cannot run
(a timeout) fails.

Prints PASS / FAIL / XFAIL / XPASS lines and "N passed, N failed"; exits non-zero on failure.
"""
import argparse
import concurrent.futures
import contextlib
import difflib
import io
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KAFKA_DIR, Kafka, Member, Report, Weir, kafka_classpath, kafka_tool, wait_until  # noqa: E402

TOPIC = "tools-t"  # 3 partitions, 10 records each, the i-th record at BASE_MS + i s
TOPIC_NEW = "tools-new"  # created, altered and deleted by kafka-topics
TOPIC_DEL = "tools-del"  # 2 partitions of 10 records, for kafka-delete-records
GROUP = "tools-g"  # empty classic group, offset 5 committed on each partition of TOPIC
GROUP_CLASSIC = "tools-live-classic"  # one live classic member on TOPIC
GROUP_CONSUMER = "tools-live-consumer"  # one live consumer-protocol member on TOPIC
RECORDS_PER_PARTITION = 10
COMMITTED = 5
# The records' timestamps start an hour ago (far enough back to ask for a time between
# two records, near enough that retention keeps them).
BASE_MS = (int(time.time()) - 3600) * 1000
# Halfway between the records i=4 and i=5: the first record at or after it is the 2nd of
# partition 2 and the 3rd of partitions 0 and 1.
MID_MS = BASE_MS + 4500
TOOL_TIMEOUT_S = 60


class Call:
    """One tool invocation. Arguments may hold {b} (bootstrap), {node} (the broker's node
    id), {dir} (the side's scratch directory), {mid} and {mid_local} (MID_MS, as a number
    and as the local date-time kafka-consumer-groups reads). `unordered` compares the lines
    as a multiset where the tool prints them in the order of a hash map or of the broker's
    answer."""

    def __init__(self, name, tool, *args, unordered=False, per_api=False):
        self.name, self.tool, self.args = name, tool, list(args)
        self.unordered, self.per_api = unordered, per_api


def offsets_json(name, entries):
    return {"file": name, "text": json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "offset": o} for t, p, o in entries]})}


FILES = [
    offsets_json("delete-records.json", [(TOPIC_DEL, 0, 3), (TOPIC_DEL, 1, RECORDS_PER_PARTITION)]),
    offsets_json("delete-records-beyond.json", [(TOPIC_DEL, 0, 1000)]),
    {"file": "election.json", "text": json.dumps({"partitions": [{"topic": TOPIC, "partition": 0}]})},
]

B = ["--bootstrap-server", "{b}"]
CALLS = [
    # ---- kafka-topics
    Call("topics create", "kafka-topics", *B, "--create", "--topic", TOPIC_NEW, "--partitions", "2",
         "--replication-factor", "1", "--config", "retention.ms=86400000"),
    Call("topics create existing", "kafka-topics", *B, "--create", "--topic", TOPIC_NEW, "--partitions", "2"),
    Call("topics create --if-not-exists", "kafka-topics", *B, "--create", "--if-not-exists", "--topic", TOPIC_NEW),
    Call("topics create --replica-assignment", "kafka-topics", *B, "--create", "--topic", "tools-assigned",
         "--replica-assignment", "{node},{node}"),
    Call("topics create --replica-assignment on a missing broker", "kafka-topics", *B, "--create", "--topic",
         "tools-assigned-7", "--replica-assignment", "7"),
    Call("topics create bad replication factor", "kafka-topics", *B, "--create", "--topic", "tools-rf3",
         "--partitions", "1", "--replication-factor", "3"),
    Call("topics create bad config", "kafka-topics", *B, "--create", "--topic", "tools-badcfg", "--config", "no.such.config=1"),
    Call("topics list", "kafka-topics", *B, "--list"),
    Call("topics list --exclude-internal", "kafka-topics", *B, "--list", "--exclude-internal"),
    Call("topics describe", "kafka-topics", *B, "--describe", "--topic", TOPIC),
    Call("topics describe with configs", "kafka-topics", *B, "--describe", "--topic", TOPIC_NEW),
    Call("topics describe --exclude-internal", "kafka-topics", *B, "--describe", "--exclude-internal"),
    Call("topics describe --under-replicated-partitions", "kafka-topics", *B, "--describe", "--under-replicated-partitions"),
    Call("topics describe --under-min-isr-partitions", "kafka-topics", *B, "--describe", "--under-min-isr-partitions"),
    Call("topics describe --at-min-isr-partitions", "kafka-topics", *B, "--describe", "--at-min-isr-partitions",
         "--exclude-internal"),
    Call("topics describe --unavailable-partitions", "kafka-topics", *B, "--describe", "--unavailable-partitions"),
    Call("topics describe --topics-with-overrides", "kafka-topics", *B, "--describe", "--topics-with-overrides",
         "--exclude-internal"),
    Call("topics describe missing", "kafka-topics", *B, "--describe", "--topic", "tools-missing"),
    Call("topics alter partitions", "kafka-topics", *B, "--alter", "--topic", TOPIC_NEW, "--partitions", "4"),
    Call("topics alter fewer partitions", "kafka-topics", *B, "--alter", "--topic", TOPIC_NEW, "--partitions", "1"),
    Call("topics describe after alter", "kafka-topics", *B, "--describe", "--topic", TOPIC_NEW),
    # ---- kafka-configs
    Call("configs topic describe", "kafka-configs", *B, "--describe", "--entity-type", "topics", "--entity-name", TOPIC_NEW),
    Call("configs topic alter", "kafka-configs", *B, "--alter", "--entity-type", "topics", "--entity-name", TOPIC_NEW,
         "--add-config", "cleanup.policy=compact,max.message.bytes=200000"),
    Call("configs topic describe after alter", "kafka-configs", *B, "--describe", "--entity-type", "topics",
         "--entity-name", TOPIC_NEW, unordered=True),
    Call("configs topic alter a list value", "kafka-configs", *B, "--alter", "--entity-type", "topics",
         "--entity-name", TOPIC_NEW, "--add-config", "cleanup.policy=[compact,delete]"),
    Call("configs topic describe a list value", "kafka-configs", *B, "--describe", "--entity-type", "topics",
         "--entity-name", TOPIC_NEW, unordered=True),
    Call("configs topic delete-config", "kafka-configs", *B, "--alter", "--entity-type", "topics", "--entity-name", TOPIC_NEW,
         "--delete-config", "max.message.bytes"),
    Call("configs topic alter unknown config", "kafka-configs", *B, "--alter", "--entity-type", "topics",
         "--entity-name", TOPIC_NEW, "--add-config", "no.such.config=1"),
    Call("configs topic alter bad value", "kafka-configs", *B, "--alter", "--entity-type", "topics",
         "--entity-name", TOPIC_NEW, "--add-config", "retention.ms=soon"),
    Call("configs topic describe --all", "kafka-configs", *B, "--describe", "--all", "--entity-type", "topics",
         "--entity-name", TOPIC),
    Call("configs topic describe --all with overrides", "kafka-configs", *B, "--describe", "--all", "--entity-type",
         "topics", "--entity-name", TOPIC_NEW),
    Call("configs topic describe missing", "kafka-configs", *B, "--describe", "--entity-type", "topics",
         "--entity-name", "tools-missing"),
    Call("configs topics describe all entities", "kafka-configs", *B, "--describe", "--entity-type", "topics", unordered=True),
    Call("configs broker describe", "kafka-configs", *B, "--describe", "--entity-type", "brokers", "--entity-name", "{node}"),
    Call("configs brokers describe every broker", "kafka-configs", *B, "--describe", "--entity-type", "brokers"),
    Call("configs broker describe --all", "kafka-configs", *B, "--describe", "--all", "--entity-type", "brokers",
         "--entity-name", "{node}"),
    Call("configs broker describe default", "kafka-configs", *B, "--describe", "--entity-type", "brokers", "--entity-default"),
    Call("configs broker alter dynamic", "kafka-configs", *B, "--alter", "--entity-type", "brokers", "--entity-name", "{node}",
         "--add-config", "log.cleaner.threads=2"),
    Call("configs broker describe after alter", "kafka-configs", *B, "--describe", "--entity-type", "brokers",
         "--entity-name", "{node}"),
    Call("configs broker-loggers describe", "kafka-configs", *B, "--describe", "--entity-type", "broker-loggers",
         "--entity-name", "{node}", unordered=True),
    Call("configs group describe", "kafka-configs", *B, "--describe", "--entity-type", "groups", "--entity-name", GROUP),
    Call("configs group alter", "kafka-configs", *B, "--alter", "--entity-type", "groups", "--entity-name", GROUP,
         "--add-config", "consumer.session.timeout.ms=10000"),
    Call("configs group describe after alter", "kafka-configs", *B, "--describe", "--entity-type", "groups",
         "--entity-name", GROUP),
    Call("configs groups describe every group", "kafka-configs", *B, "--describe", "--entity-type", "groups",
         unordered=True),
    # ---- kafka-configs: client quotas (users, clients, ips)
    Call("quotas user alter", "kafka-configs", *B, "--alter", "--entity-type", "users", "--entity-name", "tools-alice",
         "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048"),
    Call("quotas user describe", "kafka-configs", *B, "--describe", "--entity-type", "users", "--entity-name",
         "tools-alice"),
    Call("quotas user default alter", "kafka-configs", *B, "--alter", "--entity-type", "users", "--entity-default",
         "--add-config", "request_percentage=12.5"),
    Call("quotas user default describe", "kafka-configs", *B, "--describe", "--entity-type", "users",
         "--entity-default"),
    Call("quotas users describe every user", "kafka-configs", *B, "--describe", "--entity-type", "users",
         unordered=True),
    Call("quotas client alter", "kafka-configs", *B, "--alter", "--entity-type", "clients", "--entity-name",
         "tools-client", "--add-config", "producer_byte_rate=4096"),
    Call("quotas client default alter", "kafka-configs", *B, "--alter", "--entity-type", "clients",
         "--entity-default", "--add-config", "consumer_byte_rate=8192,controller_mutation_rate=10"),
    Call("quotas client describe", "kafka-configs", *B, "--describe", "--entity-type", "clients", "--entity-name",
         "tools-client"),
    Call("quotas clients describe every client", "kafka-configs", *B, "--describe", "--entity-type", "clients",
         unordered=True),
    Call("quotas user and client alter", "kafka-configs", *B, "--alter", "--entity-type", "users", "--entity-name",
         "tools-alice", "--entity-type", "clients", "--entity-name", "tools-client", "--add-config",
         "producer_byte_rate=512"),
    Call("quotas user and default client alter", "kafka-configs", *B, "--alter", "--entity-type", "users",
         "--entity-name", "tools-alice", "--entity-type", "clients", "--entity-default", "--add-config",
         "producer_byte_rate=256"),
    Call("quotas user and client describe", "kafka-configs", *B, "--describe", "--entity-type", "users",
         "--entity-name", "tools-alice", "--entity-type", "clients", "--entity-name", "tools-client"),
    Call("quotas users and clients describe every pair", "kafka-configs", *B, "--describe", "--entity-type", "users",
         "--entity-type", "clients", unordered=True),
    Call("quotas user delete-config", "kafka-configs", *B, "--alter", "--entity-type", "users", "--entity-name",
         "tools-alice", "--delete-config", "consumer_byte_rate"),
    Call("quotas user describe after delete-config", "kafka-configs", *B, "--describe", "--entity-type", "users",
         "--entity-name", "tools-alice"),
    Call("quotas user delete-config of a key not set", "kafka-configs", *B, "--alter", "--entity-type", "users",
         "--entity-name", "tools-alice", "--delete-config", "request_percentage"),
    Call("quotas client alter zero", "kafka-configs", *B, "--alter", "--entity-type", "clients", "--entity-name",
         "tools-client", "--add-config", "producer_byte_rate=0"),
    Call("quotas client alter fractional", "kafka-configs", *B, "--alter", "--entity-type", "clients",
         "--entity-name", "tools-client", "--add-config", "consumer_byte_rate=10.5"),
    Call("quotas client alter unknown key", "kafka-configs", *B, "--alter", "--entity-type", "clients",
         "--entity-name", "tools-client", "--add-config", "no_such_quota=1"),
    Call("quotas user describe missing", "kafka-configs", *B, "--describe", "--entity-type", "users", "--entity-name",
         "tools-nobody"),
    Call("quotas ip alter", "kafka-configs", *B, "--alter", "--entity-type", "ips", "--entity-name", "10.1.2.3",
         "--add-config", "connection_creation_rate=5"),
    Call("quotas ips describe", "kafka-configs", *B, "--describe", "--entity-type", "ips"),
    Call("quotas client remove every key", "kafka-configs", *B, "--alter", "--entity-type", "clients",
         "--entity-name", "tools-client", "--delete-config", "producer_byte_rate"),
    Call("quotas client describe after removal", "kafka-configs", *B, "--describe", "--entity-type", "clients",
         "--entity-name", "tools-client"),
    # ---- kafka-consumer-groups
    Call("consumer-groups list", "kafka-consumer-groups", *B, "--list", unordered=True),
    Call("consumer-groups list --state", "kafka-consumer-groups", *B, "--list", "--state", unordered=True),
    Call("consumer-groups list --type", "kafka-consumer-groups", *B, "--list", "--type", unordered=True),
    Call("consumer-groups describe", "kafka-consumer-groups", *B, "--describe", "--group", GROUP),
    Call("consumer-groups describe --members", "kafka-consumer-groups", *B, "--describe", "--group", GROUP, "--members"),
    Call("consumer-groups describe --offsets", "kafka-consumer-groups", *B, "--describe", "--group", GROUP, "--offsets"),
    Call("consumer-groups describe --state", "kafka-consumer-groups", *B, "--describe", "--group", GROUP, "--state"),
    Call("consumer-groups describe live classic", "kafka-consumer-groups", *B, "--describe", "--group", GROUP_CLASSIC),
    Call("consumer-groups describe live classic --members --verbose", "kafka-consumer-groups", *B, "--describe",
         "--group", GROUP_CLASSIC, "--members", "--verbose"),
    Call("consumer-groups describe live classic --state", "kafka-consumer-groups", *B, "--describe", "--group",
         GROUP_CLASSIC, "--state"),
    Call("consumer-groups describe live consumer --members", "kafka-consumer-groups", *B, "--describe", "--group",
         GROUP_CONSUMER, "--members"),
    Call("consumer-groups describe live consumer", "kafka-consumer-groups", *B, "--describe", "--group",
         GROUP_CONSUMER),
    Call("consumer-groups describe live consumer --members --verbose", "kafka-consumer-groups", *B, "--describe",
         "--group", GROUP_CONSUMER, "--members", "--verbose"),
    Call("consumer-groups describe live consumer --state", "kafka-consumer-groups", *B, "--describe", "--group",
         GROUP_CONSUMER, "--state"),
    Call("consumer-groups describe --all-groups --state", "kafka-consumer-groups", *B, "--describe", "--all-groups",
         "--state", unordered=True),
    Call("consumer-groups list --state Stable", "kafka-consumer-groups", *B, "--list", "--state", "Stable",
         unordered=True),
    Call("consumer-groups describe missing", "kafka-consumer-groups", *B, "--describe", "--group", "tools-missing"),
    Call("consumer-groups reset --to-earliest dry-run", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP,
         "--topic", TOPIC, "--to-earliest", "--dry-run", unordered=True),
    Call("consumer-groups reset --to-offset dry-run", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP,
         "--topic", f"{TOPIC}:0,1", "--to-offset", "3", "--dry-run", unordered=True),
    Call("consumer-groups reset --shift-by dry-run", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP,
         "--topic", TOPIC, "--shift-by", "-2", "--dry-run", unordered=True),
    Call("consumer-groups reset --to-datetime dry-run", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP,
         "--topic", TOPIC, "--to-datetime", "{mid_local}", "--dry-run", unordered=True),
    Call("consumer-groups reset --to-current --export", "kafka-consumer-groups", *B, "--reset-offsets", "--group",
         GROUP, "--all-topics", "--to-current", "--dry-run", "--export", unordered=True),
    Call("consumer-groups reset of a live group", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP_CLASSIC,
         "--topic", TOPIC, "--to-earliest", "--execute"),
    Call("consumer-groups reset --to-latest execute", "kafka-consumer-groups", *B, "--reset-offsets", "--group", GROUP,
         "--topic", TOPIC, "--to-latest", "--execute", unordered=True),
    Call("consumer-groups delete-offsets", "kafka-consumer-groups", *B, "--delete-offsets", "--group", GROUP,
         "--topic", f"{TOPIC}:0"),
    Call("consumer-groups delete of a live group", "kafka-consumer-groups", *B, "--delete", "--group", GROUP_CLASSIC),
    Call("consumer-groups delete", "kafka-consumer-groups", *B, "--delete", "--group", GROUP),
    Call("consumer-groups delete missing", "kafka-consumer-groups", *B, "--delete", "--group", "tools-missing"),
    # ---- kafka-groups
    Call("groups list", "kafka-groups", *B, "--list", unordered=True),
    Call("groups list --group-type classic", "kafka-groups", *B, "--list", "--group-type", "classic", unordered=True),
    Call("groups list --group-type consumer", "kafka-groups", *B, "--list", "--group-type", "consumer", unordered=True),
    Call("groups list --consumer", "kafka-groups", *B, "--list", "--consumer", unordered=True),
    Call("groups list --protocol consumer", "kafka-groups", *B, "--list", "--protocol", "consumer", unordered=True),
    Call("groups list --share", "kafka-groups", *B, "--list", "--share", unordered=True),
    # ---- kafka-get-offsets
    Call("get-offsets --time -1", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "-1"),
    Call("get-offsets --time latest", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "latest"),
    Call("get-offsets --time -2", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "-2"),
    Call("get-offsets --time -3 (max timestamp)", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "-3"),
    Call("get-offsets --time -4 (earliest local)", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "-4"),
    Call("get-offsets --time -5 (latest tiered)", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "-5"),
    Call("get-offsets --time a timestamp", "kafka-get-offsets", *B, "--topic", TOPIC, "--time", "{mid}"),
    Call("get-offsets --time after the last record", "kafka-get-offsets", *B, "--topic", TOPIC, "--time",
         str(BASE_MS + 10**7)),
    Call("get-offsets --topic a regular expression", "kafka-get-offsets", *B, "--topic", "tools-(t|del)"),
    Call("get-offsets --partitions", "kafka-get-offsets", *B, "--topic", TOPIC, "--partitions", "0,2"),
    Call("get-offsets --topic-partitions", "kafka-get-offsets", *B, "--topic-partitions", f"{TOPIC}:1,tools-del:0-1"),
    Call("get-offsets all topics", "kafka-get-offsets", *B, "--exclude-internal-topics"),
    Call("get-offsets missing topic", "kafka-get-offsets", *B, "--topic", "tools-missing"),
    # ---- kafka-delete-records
    Call("delete-records", "kafka-delete-records", *B, "--offset-json-file", "{dir}/delete-records.json", unordered=True),
    Call("get-offsets after delete-records", "kafka-get-offsets", *B, "--topic", TOPIC_DEL, "--time", "-2"),
    Call("delete-records beyond the high watermark", "kafka-delete-records", *B, "--offset-json-file",
         "{dir}/delete-records-beyond.json"),
    # ---- kafka-log-dirs
    Call("log-dirs describe --topic-list", "kafka-log-dirs", *B, "--describe", "--topic-list", f"{TOPIC},{TOPIC_DEL}"),
    Call("log-dirs describe --broker-list", "kafka-log-dirs", *B, "--describe", "--broker-list", "{node}",
         "--topic-list", TOPIC),
    Call("log-dirs describe every topic", "kafka-log-dirs", *B, "--describe"),
    Call("log-dirs describe missing broker", "kafka-log-dirs", *B, "--describe", "--broker-list", "7"),
    # ---- kafka-features
    Call("features describe", "kafka-features", *B, "describe"),
    # ---- kafka-cluster
    Call("cluster cluster-id", "kafka-cluster", "cluster-id", *B),
    Call("cluster list-endpoints", "kafka-cluster", "list-endpoints", *B),
    Call("cluster unregister", "kafka-cluster", "unregister", *B, "--id", "7"),
    # ---- kafka-broker-api-versions
    Call("broker-api-versions", "kafka-broker-api-versions", *B, per_api=True),
    # ---- kafka-leader-election
    Call("leader-election preferred all", "kafka-leader-election", *B, "--election-type", "preferred",
         "--all-topic-partitions"),
    Call("leader-election unclean one partition", "kafka-leader-election", *B, "--election-type", "unclean",
         "--topic", TOPIC, "--partition", "0"),
    Call("leader-election preferred from a file", "kafka-leader-election", *B, "--election-type", "preferred",
         "--path-to-json-file", "{dir}/election.json"),
    # ---- kafka-reassign-partitions
    Call("reassign-partitions list", "kafka-reassign-partitions", *B, "--list"),
    # ---- last, deletions
    Call("topics delete", "kafka-topics", *B, "--delete", "--topic", TOPIC_NEW),
    Call("topics delete missing", "kafka-topics", *B, "--delete", "--topic", "tools-missing"),
]

DOC = "KNOWN_DIFFERENCES.md, section Differences outside the harness checks"
PENDING, DOCUMENTED = "pending-api", "documented"


# A known difference: its tag, its reason, and the substitutions (regex, replacement) that
# remove exactly it from both outputs, or a function of the lines that does; None removes
# everything, exit code included. An invocation must match once its differences are
# removed, so whatever else it prints is still compared.
DIFFERENCES = {
    "message": (DOCUMENTED, "an error's message is weir's own sentence; the error (exception class) is Kafka's",
                [(r"(Exception: |Error while executing topic command : ).*", r"\1MESSAGE")]),
    "cluster-min-isr": (DOCUMENTED, "Kafka 4.4 keeps a cluster-level min.insync.replicas=1 (set when it is "
                                    "formatted, for eligible leader replicas); weir has no cluster-level configs",
                        [(r"(Configs: )min\.insync\.replicas=1,?", r"\1"),
                         (r"DYNAMIC_DEFAULT_BROKER_CONFIG:min\.insync\.replicas=1(, |(?=\}))", ""),
                         (r"^ min\.insync\.replicas=1 sensitive=false synonyms=\{\}$", "")]),
    "cluster-min-isr-override": (DOCUMENTED, "the cluster-level min.insync.replicas of Kafka 4.4 counts as an "
                                             "override, so --topics-with-overrides lists every topic there",
                                 [(r"^Topic: .*\tConfigs:$", "")]),
    "broker-config-set": (DOCUMENTED, "weir describes a read-only view of its own settings under Kafka's names, "
                                      "not Kafka's several hundred broker configs", None),
    "consumer-epochs": (DOCUMENTED, "Kafka's consumer-group epochs run one ahead of weir's (a new group's first "
                                    "member gets epoch 2 there, 1 here)",
                        [(r"^(\S+ \S+ \S+ \S+ \d+) \d+ (\S+) \d+ (\S+)$", r"\1 EPOCH \2 EPOCH \3")]),
    "topic-config-set": (DOCUMENTED, "weir describes only the topic configs it implements: not the compression "
                                     "levels, tiered storage, replication throttles, dead-letter queue or "
                                     "max.decompressed.message.bytes",
                         [(r"^ (compression\.(gzip|lz4|zstd)\.level|errors\.deadletterqueue\.group\.enable|"
                           r"(follower|leader)\.replication\.throttled\.replicas|local\.retention\.(bytes|ms)|"
                           r"max\.decompressed\.message\.bytes|remote\.[\w.]+)=.*", "")]),
    "dynamic-broker-configs": (DOCUMENTED, "broker settings are weir serve's flags, read-only at run time", None),
    "broker-loggers": (DOCUMENTED, "weir has no dynamic loggers: DescribeConfigs of a broker-logger is "
                                   "INVALID_REQUEST", None),
    "unregister-broker": (DOCUMENTED, "weir has no broker registrations and no UnregisterBroker API; the tool "
                                      "then says the cluster does not support it and exits 0", None),
    "share-streams-features": (DOCUMENTED, "weir has neither share groups nor streams groups: it supports "
                                           "share.version and streams.version only at level 0 and finalizes neither",
                               [(r"^Feature: (share|streams)\.version\s.*$", "")]),
}

# Invocation name -> the known differences it shows.
EXPECTED = {
    "topics create existing": ["message"],
    "topics create bad replication factor": ["message"],
    "topics create --replica-assignment on a missing broker": ["message"],
    "topics alter fewer partitions": ["message"],
    "topics describe": ["cluster-min-isr"],
    "topics describe with configs": ["cluster-min-isr"],
    "topics describe --exclude-internal": ["cluster-min-isr"],
    "topics describe --topics-with-overrides": ["cluster-min-isr", "cluster-min-isr-override"],
    "topics describe after alter": ["cluster-min-isr"],
    "configs topic describe --all": ["cluster-min-isr", "topic-config-set"],
    "configs topic describe --all with overrides": ["cluster-min-isr", "topic-config-set"],
    "configs topic alter unknown config": ["message"],
    "configs topic alter bad value": ["message"],
    "configs broker describe default": ["cluster-min-isr"],
    "configs brokers describe every broker": ["cluster-min-isr"],
    "configs broker describe --all": ["broker-config-set"],
    "consumer-groups describe live consumer --members --verbose": ["consumer-epochs"],
    "configs broker alter dynamic": ["dynamic-broker-configs"],
    "configs broker describe after alter": ["dynamic-broker-configs"],
    "configs broker-loggers describe": ["broker-loggers"],
    "cluster unregister": ["unregister-broker"],
    "features describe": ["share-streams-features"],
}

# kafka-broker-api-versions lines that differ: API name -> (tag, reason). The rule: an API
# both brokers support shows the same versions; one weir lacks is listed here.
NOT_IMPLEMENTED = (DOCUMENTED, "an API weir does not implement (see the list in " + DOC + ")")
OLDER_CODEC = (DOCUMENTED, "weir's newest version is the newest its codec (the kafka-protocol crate 0.18) has")
TELEMETRY = (DOCUMENTED, "weir serves client telemetry (KIP-714); Kafka 4.4 advertises it only with a metrics "
                         "reporter plugin that takes client telemetry")
API_VERSIONS_EXPECTED = {
    **{api: NOT_IMPLEMENTED for api in [
        "AlterReplicaLogDirs",
        "CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken", "DescribeDelegationToken",
        "DescribeQuorum", "UpdateFeatures", "UnregisterBroker", "AddRaftVoter", "RemoveRaftVoter",
        "UnregisterController", "ShareGroupHeartbeat", "ShareGroupDescribe", "ShareFetch", "ShareAcknowledge",
        "InitializeShareGroupState", "ReadShareGroupState", "WriteShareGroupState", "DeleteShareGroupState",
        "ReadShareGroupStateSummary", "DescribeShareGroupOffsets", "AlterShareGroupOffsets",
        "DeleteShareGroupOffsets", "StreamsGroupHeartbeat", "StreamsGroupDescribe",
        "StreamsGroupTopologyDescriptionUpdate"]},
    **{api: OLDER_CODEC for api in ["Produce", "ListOffsets", "OffsetCommit", "OffsetFetch", "WriteTxnMarkers",
                                     "TxnOffsetCommit", "DescribeLogDirs", "DeleteGroups"]},
    **{api: TELEMETRY for api in ["GetTelemetrySubscriptions", "PushTelemetry"]},
}


# ---------------------------------------------------------------- normalising

API_LINE = re.compile(r"^\t?(\w+)\((\d+)\): (.*?),?$")

def normalise(text, ctx):
    """The output with what legitimately differs between the two brokers replaced by
    placeholders; see the module docstring."""
    node = re.escape(str(ctx["node"]))
    lines = []
    for line in text.splitlines():
        if line.startswith("\tat ") or re.match(r"\t\.\.\. \d+ more$", line):
            continue  # a Java stack frame of the tool itself
        line = line.replace(ctx["bootstrap"], "HOST:PORT")
        line = re.sub(rf"\b{ctx['bootstrap'].rsplit(':', 1)[1]}\b", "PORT", line)
        line = re.sub(r"\b(Epoch: )\d+", r"\1EPOCH", line)
        if ctx.get("cluster_id"):
            line = line.replace(ctx["cluster_id"], "CLUSTER-ID")
        line = line.replace(ctx["dir"], "DIR")
        line = re.sub(r"(TopicId: )\S+", r"\1TOPIC-ID", line)
        if line.startswith('{"brokers"'):
            # kafka-log-dirs' JSON lists partitions in the order of the broker's answer.
            doc = json.loads(line)
            for broker in doc["brokers"]:
                for log_dir in broker["logDirs"]:
                    log_dir["partitions"].sort(key=lambda p: p["partition"])
            line = json.dumps(doc, separators=(",", ":"))
        line = re.sub(r'("logDir":)"[^"]*"', r'\1"LOG-DIR"', line)
        line = re.sub(r'("size":)\d+', r"\1SIZE", line)
        # Node ids, where the tools print them.
        line = re.sub(rf"\b(Leader|Replicas|Isr|Elr|LastKnownElr|id|broker|broker-logger|brokers|Broker|node)(:? ?){node}\b",
                      r"\1\2NODE", line)
        line = re.sub(rf'("broker":){node}\b', r"\1NODE", line)
        line = re.sub(rf"(?<!\w)\(\s*{node}\)", "(NODE)", line)  # a coordinator "host:port (1)"
        line = re.sub(rf"^{node}(?=\s+\S+\s+PORT\s)", "NODE", line)  # kafka-cluster list-endpoints
        if not API_LINE.match(line):
            # Member ids: librdkafka's classic "rdkafka-<uuid>", a consumer-protocol
            # member's 22-character id (base64, with + and /).
            line = re.sub(r"[\w.-]*-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "MEMBER-ID", line)
            line = re.sub(r"(?<![\w+/-])[A-Za-z0-9_+/-]{22}(?![\w+/-])", "ID", line)
        line = re.sub(r"[ ]+", " ", line).rstrip()
        if line:
            lines.append(line)
    return lines


def api_lines(lines):
    return {m.group(1): m.group(3) for m in map(API_LINE.match, lines) if m}


# ---------------------------------------------------------------- running the tools

def tool_classes():
    """Tool name -> main class, as kafka/tool starts them."""
    text = open(os.path.join(KAFKA_DIR, "tool")).read()
    return dict(re.findall(r"^\s+(kafka-[\w-]+)\) cls=(\S+) ;;", text, re.M))


def compile_runner():
    out = tempfile.mkdtemp(prefix="tools-runner-")
    subprocess.run(["javac", "-nowarn", "-d", out, "-cp", kafka_classpath(), os.path.join(KAFKA_DIR, "ToolRunner.java")],
                   check=True)
    return kafka_classpath() + os.pathsep + out


class ToolRunner:
    """Kafka's tools in one JVM (kafka/ToolRunner.java): what kafka_tool gives, faster. A
    tool that does not finish within TOOL_TIMEOUT_S gets its JVM killed and a new one."""

    def __init__(self, classpath):
        self.classpath, self.classes, self.proc = classpath, tool_classes(), None

    def _start(self):
        self.proc = subprocess.Popen(["java", "-Xmx384m", "-XX:+UseSerialGC", "-cp", self.classpath, "ToolRunner"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.answers), daemon=True).start()

    @staticmethod
    def _read(proc, answers):
        while True:
            code, size = proc.stdout.readline(), proc.stdout.readline()
            if not size:
                answers.put(None)
                return
            answers.put((int(code), proc.stdout.read(int(size)).decode("utf-8", "replace")))

    def __call__(self, name, *args):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(("\t".join([self.classes[name], *args]) + "\n").encode())
        self.proc.stdin.flush()
        try:
            answer = self.answers.get(timeout=TOOL_TIMEOUT_S)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"{name} did not finish within {TOOL_TIMEOUT_S} s")
        if answer is None:
            raise RuntimeError(f"the tool runner's JVM ended during {name}")
        code, out = answer
        return code, "\n".join(l for l in out.splitlines() if not l.startswith("SLF4J"))

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- one side

class Side:
    """One broker with its fixtures, and what each invocation printed there."""

    def __init__(self, broker, tool):
        self.broker, self.tool = broker, tool
        self.dir = tempfile.mkdtemp(prefix=f"tools-{broker.name}-")
        self.members = []
        self.results = {}
        self.ctx = {"b": broker.bootstrap, "bootstrap": broker.bootstrap, "dir": self.dir, "mid": str(MID_MS),
                    "mid_local": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(MID_MS / 1000)) + ".500"}

    def setup(self):
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
        b = self.broker.bootstrap
        admin = AdminClient({"bootstrap.servers": b})
        for f in admin.create_topics([NewTopic(TOPIC, 3, 1), NewTopic(TOPIC_DEL, 2, 1)]).values():
            f.result(30)
        cluster = admin.describe_cluster(request_timeout=30).result(30)
        self.ctx["cluster_id"] = cluster.cluster_id
        self.ctx["node"] = cluster.nodes[0].id
        p = Producer({"bootstrap.servers": b, "linger.ms": 5})
        for i in range(3 * RECORDS_PER_PARTITION):
            p.produce(TOPIC, value=f"v{i}", partition=i % 3, timestamp=BASE_MS + i * 1000)
        for i in range(2 * RECORDS_PER_PARTITION):
            p.produce(TOPIC_DEL, value=f"d{i}", partition=i % 2)
        if p.flush(30):
            raise RuntimeError("records not acknowledged within 30 s")
        c = Consumer({"bootstrap.servers": b, "group.id": GROUP, "enable.auto.commit": False})
        # The first commit may find the offsets topic still being created (Kafka answers
        # NOT_COORDINATOR meanwhile).
        deadline = time.time() + 30
        while True:
            try:
                c.commit(offsets=[TopicPartition(TOPIC, i, COMMITTED) for i in range(3)], asynchronous=False)
                break
            except Exception:  # noqa: BLE001 - retried until the deadline
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        c.close()
        self.members = [Member("confluent-kafka", b, TOPIC, GROUP_CLASSIC),
                        Member("confluent-kafka", b, TOPIC, GROUP_CONSUMER, protocol="consumer")]
        for f in FILES:
            with open(os.path.join(self.dir, f["file"]), "w") as out:
                out.write(f["text"])
        # Both members own all 3 partitions and have read every record (so their lag is 0).
        for m in self.members:
            if not wait_until(lambda: m.assignment == [0, 1, 2] and len(m.values) >= 3 * RECORDS_PER_PARTITION, 60):
                raise RuntimeError(f"a member of the live groups did not settle: {m.assignment}, {len(m.values)} read")
        time.sleep(1.5)  # their commits of the last records

    def run(self, calls):
        for call in calls:
            args = [a.format(**self.ctx) for a in call.args]
            t0 = time.time()
            try:
                code, out = self.tool(call.tool, *args)
            except Exception as e:  # noqa: BLE001 - a tool that cannot run is reported
                code, out = None, f"did not run: {e!r}"
            self.results[call.name] = (code, out, normalise(out, self.ctx), time.time() - t0)

    def close(self):
        for m in self.members:
            m.leave()


def run_side(broker, calls, tool):
    side = Side(broker, tool)
    broker.start()
    try:
        side.setup()
        side.run(calls)
    finally:
        side.close()
        broker.stop()
        if isinstance(tool, ToolRunner):
            tool.close()
    return side


# ---------------------------------------------------------------- comparing

def diff(kafka_lines, weir_lines):
    return "\n".join(difflib.unified_diff(kafka_lines, weir_lines, "kafka", "weir", lineterm="", n=2))


def masked(lines, names):
    """The lines with the named known differences removed (None: nothing is left)."""
    for name in names:
        subs = DIFFERENCES[name][2]
        if subs is None:
            return None
        if callable(subs):
            lines = subs(lines)
            continue
        out = []
        for line in lines:
            for pattern, repl in subs:
                line = re.sub(pattern, repl, line).rstrip()
            if line:
                out.append(line)
        lines = out
    return lines


def outcome(kafka, weir, unordered, names):
    """Whether (exit code, lines) of the two brokers match once the named differences are
    removed."""
    k, w = masked(kafka[1], names), masked(weir[1], names)
    if k is None:
        return True, ""
    if unordered:
        k, w = sorted(k), sorted(w)
    same = kafka[0] == weir[0] and k == w
    return same, f"exit code: kafka {kafka[0]}, weir {weir[0]}\n" + diff(k, w)


def judge(r, name, kafka, weir, unordered, names):
    """One comparison with its known differences: FAIL when it differs beyond them, XFAIL
    when they explain it, XPASS for a listed difference that is gone (a failure unless the
    API it waits for is pending)."""
    same, why = outcome(kafka, weir, unordered, names)
    if not names or not same:
        r.check(name, same, why)
        return
    for n in names:
        if outcome(kafka, weir, unordered, [m for m in names if m != n])[0]:
            tag, reason = DIFFERENCES[n][:2]
            print(f"XPASS {name} [{tag} {n}]: no longer differs by this; remove it from EXPECTED ({reason})", flush=True)
            if tag != PENDING:
                r.check(f"{name}: listed difference '{n}' still shows", False, f"update EXPECTED and {DOC}")
    tags = ", ".join(f"{DIFFERENCES[n][0]} {n}: {DIFFERENCES[n][1]}" for n in names)
    print(f"XFAIL {name} [{tags}]\n{outcome(kafka, weir, unordered, [])[1]}", flush=True)


def compare(r, call, kafka, weir):
    kc, _, knorm, _ = kafka.results[call.name]
    wc, _, wnorm, _ = weir.results[call.name]
    names = EXPECTED.get(call.name, [])
    if not call.per_api:
        judge(r, call.name, (kc, knorm), (wc, wnorm), call.unordered, names)
        return
    # kafka-broker-api-versions: the lines around the APIs, then each API on its own.
    judge(r, f"{call.name}: exit code and the lines around the APIs", (kc, [l for l in knorm if not API_LINE.match(l)]),
          (wc, [l for l in wnorm if not API_LINE.match(l)]), False, names)
    ka, wa = api_lines(knorm), api_lines(wnorm)
    for api in list(ka) + [a for a in wa if a not in ka]:
        name = f"{call.name} {api}"
        same = ka.get(api) == wa.get(api)
        why = f"kafka: {ka.get(api)}\nweir:  {wa.get(api)}"
        if api not in API_VERSIONS_EXPECTED:
            r.check(name, same, why)
            continue
        tag, reason = API_VERSIONS_EXPECTED[api]
        if not same:
            print(f"XFAIL {name} [{tag}: {reason}]\n{why}", flush=True)
            continue
        print(f"XPASS {name} [{tag}]: the same now; remove it from API_VERSIONS_EXPECTED ({reason})", flush=True)
        if tag != PENDING:
            r.check(f"{name}: listed difference still shows", False, f"update API_VERSIONS_EXPECTED and {DOC}")


def self_check(r):
    """The comparison can fail: fed made-up outputs, it fails a difference nobody listed,
    excuses a listed one, and fails a listed difference that is gone."""
    class Quiet(Report):
        def check(self, name, ok, why=""):
            self.passed += ok
            self.failed += not ok
            return ok
    kafka = (1, ["Error while executing topic command : Topic 'a' already exists."])
    weir = (1, ["Error while executing topic command : topic 'a' already exists"])
    results = []
    for w, names in [(weir, []), (weir, ["message"]), ((0, weir[1]), ["message"]), (kafka, ["message"])]:
        q = Quiet()
        with contextlib.redirect_stdout(io.StringIO()):
            judge(q, "self-check", kafka, w, False, names)
        results.append(q.failed)
    r.check("the comparison fails an unlisted difference, excuses a listed one, fails a different exit code "
            "and a listed difference that is gone", results == [1, 0, 1, 1], str(results))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", default="both", choices=["weir", "kafka", "both"])
    ap.add_argument("--weir-bin", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "target", "release", "weir"))
    ap.add_argument("--only", help="comma-separated tool names (kafka-topics,...) or invocation names")
    ap.add_argument("--show", action="store_true", help="print every invocation's normalised output")
    ap.add_argument("--jvm-per-tool", action="store_true",
                    help="start each tool in its own JVM (kafka/tool), as a user would; slower")
    a = ap.parse_args()
    calls = CALLS
    if a.only:
        wanted = a.only.split(",")
        calls = [c for c in CALLS if c.tool in wanted or c.name in wanted]
    names = ["kafka", "weir"] if a.broker == "both" else [a.broker]
    brokers = {n: (Kafka() if n == "kafka" else Weir(os.path.abspath(a.weir_bin))) for n in names}
    r = Report()
    self_check(r)
    t0 = time.time()
    classpath = None if a.jvm_per_tool else compile_runner()

    def tool():
        if classpath is None:
            return lambda name, *args: kafka_tool(name, *args, timeout=TOOL_TIMEOUT_S)
        return ToolRunner(classpath)
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        futures = {n: pool.submit(run_side, brokers[n], calls, tool()) for n in names}
        sides = {}
        for n, f in futures.items():
            try:
                sides[n] = f.result()
            except Exception as e:  # noqa: BLE001 - a side that cannot run is a failure
                r.check(f"[{n}] broker started and fixtures made", False, repr(e))
    print(f"ran {len(calls)} invocations on {', '.join(sides)} in {time.time() - t0:.0f} s", flush=True)
    for call in calls:
        for n, side in sides.items():
            code, out, norm, took = side.results[call.name]
            if a.show or a.broker != "both":
                print(f"---- [{n}] {call.name}: exit {code} ({took:.1f} s)\n" + "\n".join(norm), flush=True)
            if code is None:
                r.check(f"[{n}] {call.name} ran", False, out)
        if len(sides) == 2 and all(s.results[call.name][0] is not None for s in sides.values()):
            compare(r, call, sides["kafka"], sides["weir"])
    r.finish()


if __name__ == "__main__":
    main()
