#!/usr/bin/env python3
"""Runs every `weir` CLI command against weir and against Apache Kafka, and checks the
table and JSON outputs, the reset plan/execute/undo cycle on a real group, the numbers
against Kafka's own kafka-consumer-groups, and the error messages. A consumer-protocol group
(KIP-848) is read by `weir groups list/describe` and by Kafka's kafka-consumer-groups,
kafka-groups and kafka-configs, its group configs set with kafka-configs and seen at work.

Usage: cli_test.py WEIR_BIN [--broker weir|kafka|both] [--only cli|consumer-groups]
(default: both brokers, every scenario)
Ends with "N passed, N failed"; exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat"))
from harness import Kafka, Member, Report, Weir, kafka_tool, wait_until  # noqa: E402

import consumer_heartbeat  # noqa: E402


def uid():
    return uuid.uuid4().hex[:8]


class Cli:
    def __init__(self, bin_path, bootstrap, cwd):
        self.bin, self.bootstrap, self.cwd = bin_path, bootstrap, cwd

    def __call__(self, *args, stdin=None, bootstrap=True, timeout=60, env=None):
        cmd = [self.bin] + list(args) + (["--bootstrap", self.bootstrap] if bootstrap else [])
        e = dict(os.environ)
        e.pop("WEIR_BOOTSTRAP", None)
        e.update(env or {})
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=self.cwd, env=e)
        return r.returncode, r.stdout, r.stderr

    def json(self, *args):
        code, out, err = self(*args, "--output", "json")
        if code != 0:
            raise RuntimeError(f"weir {' '.join(args)} failed: {err.strip()}")
        return json.loads(out)


def run_against(r, broker, weir_bin):  # noqa: C901 - one scenario, read top to bottom
    b, tag = broker.bootstrap, f"[{broker.name}]"
    work = tempfile.mkdtemp(prefix="weir-cli-")
    cli = Cli(weir_bin, b, work)
    topic, group = f"cli-{uid()}", f"cli-g-{uid()}"

    # ---- topics
    code, out, err = cli("topics", "create", topic, "--partitions", "3", "--config", "retention.ms=86400000")
    r.check(f"{tag} topics create", code == 0 and f"topic '{topic}' created with 3 partitions" in out, out + err)
    code, out, err = cli("topics", "create", topic, "--partitions", "3")
    r.check(f"{tag} topics create of an existing topic fails with a sentence", code != 0 and f"topic '{topic}' already exists" in err, err)
    code, out, err = cli("topics", "list")
    r.check(f"{tag} topics list (table)", code == 0 and any(l.split()[:2] == [topic, "3"] for l in out.splitlines()), out)
    listed = {t["name"]: t for t in cli.json("topics", "list")}
    r.check(f"{tag} topics list (json)", topic in listed and listed[topic]["partitions"] == 3, str(listed.get(topic)))

    # ---- produce
    lines = "".join(f"k{i % 20}:v{i}\n" for i in range(300))
    code, out, err = cli("produce", topic, "--key-separator", ":", "--header", "src=cli", stdin=lines)
    r.check(f"{tag} produce 300 keyed lines from stdin", code == 0 and "produced 300 records" in err, err)
    big = os.path.join(work, "big.txt")
    with open(big, "w") as f:
        f.writelines(f"line-{i}\n" for i in range(20000))
    code, out, err = cli("produce", topic, "--file", big, "--partition", "2", "--compression", "zstd", "--acks", "1")
    r.check(f"{tag} produce a 20,000-line file to one partition, zstd, acks=1", code == 0 and "produced 20000 records" in err, err)

    # ---- describe
    d = cli.json("topics", "describe", topic)
    latest = {p["partition"]: p["latest_offset"] for p in d["partitions"]}
    r.check(f"{tag} topics describe (json): partitions, offsets, counts, configs",
            len(d["partitions"]) == 3 and d["messages"] == 20300 and latest[2] >= 20000 and d["configs"].get("retention.ms") == "86400000"
            and all(p["size_bytes"] > 0 for p in d["partitions"]),
            json.dumps(d)[:400])
    code, out, err = cli("topics", "describe", topic)
    r.check(f"{tag} topics describe (table)", code == 0 and "20300 messages" in out and "retention.ms" in out and "EARLIEST" in out, out)
    code, out, err = cli("topics", "describe", topic, "--output", "yaml")
    r.check(f"{tag} topics describe (yaml)", code == 0 and f"name: {topic}" in out, out[:200])

    # ---- consume
    code, out, err = cli("consume", topic, "--from-beginning", "--exit-at-end", "--json", timeout=120)
    recs = [json.loads(l) for l in out.splitlines()]
    keyed = [x for x in recs if x["key"] is not None]
    key_parts = {}
    for x in keyed:
        key_parts.setdefault(x["key"], set()).add(x["partition"])
    r.check(f"{tag} consume --from-beginning --exit-at-end --json: every record, keys in one partition, headers",
            code == 0 and len(recs) == 20300 and len(keyed) == 300 and all(len(s) == 1 for s in key_parts.values())
            and all(x["headers"] == {"src": "cli"} for x in keyed),
            f"{len(recs)} records, {len(keyed)} keyed; {err.strip()}")
    # The Java client's partitioner puts each key where weir's produce put it.
    code, out2 = kafka_tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
                                  "--max-messages", "20300", "--property", "print.key=true", "--property", "print.partition=true",
                                  "--timeout-ms", "20000", timeout=120)
    java_parts = {}
    for l in out2.splitlines():
        f = l.split("\t")
        if len(f) == 3 and f[1].startswith("k"):
            java_parts.setdefault(f[1], set()).add(int(f[0].replace("Partition:", "")))
    r.check(f"{tag} kafka-console-consumer reads what weir produced, keys where weir put them",
            java_parts == key_parts, f"{len(java_parts)} keys from Kafka's tool vs {len(key_parts)}")
    code, out, err = cli("consume", topic, "--partition", "2", "--offset", "19990", "--max-messages", "5", "--format", "%p/%o %v")
    r.check(f"{tag} consume --partition --offset --max-messages --format",
            code == 0 and out.splitlines() == [f"2/{19990 + i} line-{19990 - (latest[2] - 20000) + i}" for i in range(5)], out)

    # Start at a time: records produced after the mark, none before.
    time.sleep(1.1)
    mark = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time())) + "Z"
    time.sleep(1.1)
    cli("produce", topic, "--partition", "1", stdin="".join(f"after-{i}\n" for i in range(7)))
    code, out, err = cli("consume", topic, "--timestamp", mark, "--exit-at-end")
    r.check(f"{tag} consume --timestamp reads exactly the records produced after that time",
            code == 0 and sorted(out.split()) == sorted(f"after-{i}" for i in range(7)), out[-300:] + err)

    # ---- a group with committed offsets and lag, read by weir and by kafka-consumer-groups
    m = Member("confluent-kafka", b, topic, group)
    ok = wait_until(lambda: len(m.values) >= 20300, 90)
    code, out, err = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    r.check(f"{tag} reset-offsets refuses while the group has active members",
            code != 0 and f"group '{group}' has 1 active member" in err, err)
    d = cli.json("groups", "describe", group)
    r.check(f"{tag} groups describe (json) of an active group: state, assignor, member with its partitions",
            ok and d["state"] == "Stable" and d["assignor"] == "range" and len(d["members"]) == 1
            and sorted(d["members"][0]["assignment"].get(topic, [])) == [0, 1, 2] and d["members"][0]["client_id"],
            json.dumps(d)[:400])
    m.leave()
    code, out, err = cli("produce", topic, "--partition", "0", stdin="".join(f"late-{i}\n" for i in range(50)))
    time.sleep(1.2)
    d = cli.json("groups", "describe", group)
    mine = {p["partition"]: (p["committed_offset"], p["log_end_offset"], p["lag"]) for p in d["partitions"]}
    code, out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group)
    theirs = {}
    for l in out.splitlines():
        f = l.split()
        if len(f) >= 6 and f[0] == group and f[1] == topic:
            theirs[int(f[2])] = (int(f[3]), int(f[4]), int(f[5]))
    r.check(f"{tag} groups describe numbers equal kafka-consumer-groups --describe", mine == theirs and len(mine) == 3,
            f"weir CLI {mine} vs Kafka's tool {theirs}")
    lag = {x["topic"]: x for x in d["lag"]}
    r.check(f"{tag} groups describe: lag per topic in records and time", lag.get(topic, {}).get("records") == 50
            and 1000 <= lag[topic]["behind_ms"] < 120000, str(d["lag"]))
    code, out, err = cli("groups", "describe", group)
    r.check(f"{tag} groups describe (table)", code == 0 and f"lag on {topic}: 50 records," in out and "COMMITTED" in out, out)
    try:
        subprocess.run([weir_bin, "groups", "describe", group, "--watch", "1", "--bootstrap", b], capture_output=True,
                       text=True, timeout=2.5, cwd=work)
        watched = ""
    except subprocess.TimeoutExpired as e:
        watched = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    r.check(f"{tag} groups describe --watch refreshes until interrupted",
            watched.count("refreshing every 1 s") >= 2 and f"lag on {topic}" in watched, watched[-300:])
    code, out, err = cli("groups", "list")
    r.check(f"{tag} groups list", code == 0 and any(l.split()[:2] == [group, "Empty"] for l in out.splitlines()), out)
    listed = {g["group"]: g for g in cli.json("groups", "list")}
    r.check(f"{tag} groups list (json): an Empty group keeps its protocol type", listed.get(group, {}).get("protocol_type") == "consumer"
            and listed[group]["state"] == "Empty", str(listed.get(group)))
    r.check(f"{tag} groups list --state Stable leaves it out", group not in cli("groups", "list", "--state", "Stable")[1], "")

    # ---- reset: plan, execute, undo
    before = {p["partition"]: p["committed_offset"] for p in cli.json("groups", "describe", group)["partitions"]}
    code, out, err = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
    after_plan = {p["partition"]: p["committed_offset"] for p in cli.json("groups", "describe", group)["partitions"]}
    r.check(f"{tag} reset-offsets without --execute shows the plan and changes nothing",
            code == 0 and "plan only" in out and after_plan == before and all(f" {before[p]} " in out for p in before), out)
    plan = cli.json("groups", "reset-offsets", group, "--topic", f"{topic}:0,1", "--shift-by", "-5")
    r.check(f"{tag} reset-offsets --shift-by plan (json) for chosen partitions",
            [(x["partition"], x["new"]) for x in plan["partitions"]] == [(0, before[0] - 5), (1, before[1] - 5)], str(plan))
    code, out, err = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    now = {p["partition"]: p["committed_offset"] for p in cli.json("groups", "describe", group)["partitions"]}
    backup = [l.split("--from-file ")[1].split()[0] for l in out.splitlines() if "--from-file" in l]
    r.check(f"{tag} reset-offsets --execute moves the offsets and saves the previous ones",
            code == 0 and now == {0: 0, 1: 0, 2: 0} and backup and os.path.exists(os.path.join(work, backup[0])), out + err)
    if backup:
        code, out, err = cli("groups", "reset-offsets", group, "--from-file", backup[0], "--execute")
        undone = {p["partition"]: p["committed_offset"] for p in cli.json("groups", "describe", group)["partitions"]}
        r.check(f"{tag} the printed undo command restores the previous offsets", code == 0 and undone == before, f"{undone} vs {before}")
    mark = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    plan = cli.json("groups", "reset-offsets", group, "--topic", topic, "--to-datetime", mark)
    r.check(f"{tag} reset-offsets --to-datetime an hour ago plans the earliest offsets",
            all(x["new"] == 0 for x in plan["partitions"]), str(plan))
    plan = cli.json("groups", "reset-offsets", group, "--topic", topic, "--by-duration", "PT0.001S")
    r.check(f"{tag} reset-offsets --by-duration plans the latest offsets for a moment ago",
            {x["partition"]: x["new"] for x in plan["partitions"]} == {p: v[1] for p, v in mine.items()}, str(plan))
    plan = cli.json("groups", "reset-offsets", group, "--topic", topic, "--to-offset", "3")
    r.check(f"{tag} reset-offsets --to-offset", all(x["new"] == 3 for x in plan["partitions"]), str(plan))
    plan = cli.json("groups", "reset-offsets", group, "--topic", topic, "--to-latest")
    r.check(f"{tag} reset-offsets --to-latest", {x["partition"]: x["new"] for x in plan["partitions"]} == {p: v[1] for p, v in mine.items()}, str(plan))

    # ---- configs, partitions, deletes
    code, out, err = cli("topics", "alter-config", topic, "--set", "retention.bytes=1000000", "--delete", "retention.ms")
    cfg = cli.json("topics", "describe", topic)["configs"]
    r.check(f"{tag} topics alter-config --set/--delete", code == 0 and cfg.get("retention.bytes") == "1000000" and "retention.ms" not in cfg, f"{cfg} {err}")
    code, out, err = cli("topics", "add-partitions", topic, "--total", "5")
    r.check(f"{tag} topics add-partitions", code == 0 and len(cli.json("topics", "describe", topic)["partitions"]) == 5, out + err)
    code, out, err = cli("groups", "delete-offsets", group, "--topic", topic)
    r.check(f"{tag} groups delete-offsets", code == 0 and "deleted" in out and not cli.json("groups", "describe", group)["partitions"]
            if code == 0 else False, out + err)
    cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    code, out, err = cli("groups", "delete", group)
    r.check(f"{tag} groups delete", code == 0 and f"group '{group}' deleted" in out, out + err)

    # ---- errors: one sentence naming the thing and the fix, non-zero exit
    code, out, err = cli("groups", "describe", group)
    r.check(f"{tag} missing group: clear error", code != 0 and err.strip() == f"error: group '{group}' does not exist; list groups with `weir groups list`", err)
    code, out, err = cli("topics", "describe", "no-such-topic")
    r.check(f"{tag} missing topic: clear error", code != 0 and err.strip() == "error: topic 'no-such-topic' does not exist; list topics with `weir topics list`", err)
    code, out, err = cli("produce", "no-such-topic", stdin="x\n")
    r.check(f"{tag} produce to a missing topic: clear error", code != 0 and "create it with `weir topics create" in err, err)
    code, out, err = cli("topics", "delete", topic)
    r.check(f"{tag} topics delete", code == 0 and f"topic '{topic}' deleted" in out and topic not in {t["name"] for t in cli.json("topics", "list")}, out + err)


def kafka_rows(out, first):
    """The whitespace-split rows of a Kafka tool's table whose first column is `first`."""
    return [l.split() for l in out.splitlines() if l.split()[:1] == [first]]


def partitions_text(assignment):
    """{"t": [0, 1]} as Kafka's tools print an assignment: "t:0,1", "-" for none."""
    text = ",".join(f"{t}:{','.join(str(p) for p in sorted(ps))}" for t, ps in sorted(assignment.items()) if ps)
    return text or "-"


def consumer_group_scenario(r, broker, weir_bin):  # noqa: C901 - one scenario, read top to bottom
    """A consumer-protocol group (KIP-848) with its own group configs, read by `weir groups`
    and by Kafka's kafka-consumer-groups, kafka-groups and kafka-configs."""
    b, tag = broker.bootstrap, f"[{broker.name}]"
    work = tempfile.mkdtemp(prefix="weir-cli-")
    cli = Cli(weir_bin, b, work)
    topic, group, classic, quiet = f"cg-{uid()}", f"cg-g-{uid()}", f"cg-classic-{uid()}", f"cg-quiet-{uid()}"
    cli("topics", "create", topic, "--partitions", "4")
    cli("produce", topic, stdin="".join(f"v{i}\n" for i in range(400)))

    def configs(*args):
        return kafka_tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "groups", *args)

    def lines(out):
        return [l.strip() for l in out.splitlines() if l.strip()]

    # ---- group configs with Kafka's kafka-configs
    code, out = configs("--entity-name", group, "--alter", "--add-config",
                        "consumer.heartbeat.interval.ms=10000,consumer.session.timeout.ms=30000")
    r.check(f"{tag} kafka-configs --alter --add-config sets a group's heartbeat interval and session timeout",
            code == 0 and f"Completed updating config for group {group}." in out, out[-300:])
    dynamic = [
        "consumer.heartbeat.interval.ms=10000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.heartbeat.interval.ms=10000, "
        "STATIC_BROKER_CONFIG:group.consumer.heartbeat.interval.ms=500, DEFAULT_CONFIG:group.consumer.heartbeat.interval.ms=5000}",
        "consumer.session.timeout.ms=30000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.session.timeout.ms=30000, "
        "STATIC_BROKER_CONFIG:group.consumer.session.timeout.ms=6000, DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000}",
    ]
    code, out = configs("--entity-name", group, "--describe")
    r.check(f"{tag} kafka-configs --describe shows the group's configs with their synonyms",
            code == 0 and lines(out) == [f"Dynamic configs for group {group} are:"] + dynamic, out[-600:])
    for setting, message in [
        ("consumer.session.timeout.ms=1000", "consumer.session.timeout.ms must be in the range 6000 to 60000 inclusive."),
        ("consumer.heartbeat.interval.ms=40000", "consumer.heartbeat.interval.ms must be in the range 500 to 15000 inclusive."),
        ("consumer.session.timeout.ms=9000", "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"),
        ("consumer.bogus=1", "Unknown group config name: consumer.bogus"),
        ("consumer.session.timeout.ms=soon", "Invalid value soon for configuration consumer.session.timeout.ms: Not a number of type INT"),
    ]:
        code, out = configs("--entity-name", group, "--alter", "--add-config", setting)
        r.check(f"{tag} kafka-configs refuses {setting}: {message}",
                code != 0 and f"InvalidConfigurationException: {message}" in out, out[-400:])
    code, out = configs("--describe")
    r.check(f"{tag} kafka-configs --describe of every group names the group with configs",
            code == 0 and f"Dynamic configs for group {group} are:" in out, out[-600:])
    code, out = configs("--entity-name", f"nobody-{uid()}", "--describe")
    r.check(f"{tag} kafka-configs --describe of a group with neither members nor configs says so",
            code == 0 and "doesn't exist and doesn't have dynamic config." in out, out[-300:])

    # ---- a consumer-protocol group reconciling, as weir and Kafka's tools show it
    # A member that joins and then falls silent holds every partition; once a second member
    # joins, the silent one should give half up, but never heartbeats to learn it: both are
    # reconciling until the group's session timeout (30 s) removes the silent one. (Kafka 4.4
    # computes the new target only at a heartbeat at least `consumer.assignment.interval.ms`
    # after the join, so there the group is Assigning until the new member's second
    # heartbeat, 10 s later; weir computes it at once.)
    silent = consumer_heartbeat.join(b, group, topic)
    silent_at = time.time()
    r.check(f"{tag} a member joining the group is told the group's heartbeat interval (10 s)",
            silent["error"] == 0 and silent["heartbeat_interval_ms"] == 10000, str(silent))
    members = [Member("confluent-kafka", b, topic, group, protocol="consumer", assignor="range")]
    try:
        seen = {}

        def reconciling():
            try:
                seen["d"] = cli.json("groups", "describe", group)
            except RuntimeError:
                return False
            return len(seen["d"]["members"]) == 2 and seen["d"]["reconciling_members"] == 2

        ok = wait_until(reconciling, 20)
        code, table, err = cli("groups", "describe", group)
        code, tool = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group,
                                "--members", "--verbose")
        in_window = time.time() - silent_at < 28
        d = seen.get("d", {})
        ms = {m["member_id"]: m for m in d.get("members", [])}
        held = ms.get(silent["member_id"], {})
        targets = sorted(p for m in ms.values() for ps in (m.get("target_assignment") or {}).values() for p in ps)
        r.check(f"{tag} groups describe (json) while reconciling: epochs, owned and target partitions, who is reconciling",
                ok and d["group_protocol"] == "consumer" and d["assignor"] == "range" and targets == [0, 1, 2, 3]
                and d["group_epoch"] == d["assignment_epoch"] and d["state"] == "Reconciling"
                and held.get("assignment") == {topic: [0, 1, 2, 3]} and held.get("member_epoch", 1e9) < d["assignment_epoch"]
                and all(m["reconciling"] and m["assignment"] != m["target_assignment"] for m in ms.values()),
                json.dumps(d)[:900])
        header = next((l.split() for l in table.splitlines() if "RECONCILING" in l), [])
        r.check(f"{tag} groups describe (table) while reconciling: epochs in the first line, owned and target partitions per member",
                "group epoch" in table and "target assignment epoch" in table and "2 reconciling" in table
                and header[4:] == ["EPOCH", "PARTITIONS", "TARGET", "RECONCILING"]
                and sum(l.split()[-1:] == ["yes"] for l in table.splitlines()) == 2, table)
        rows = {row[1]: row for row in kafka_rows(tool, group) if len(row) == 9}
        silent_row = rows.get(silent["member_id"], [""] * 9)
        r.check(f"{tag} kafka-consumer-groups --describe --members --verbose shows the silent member's partitions and its smaller target",
                code == 0 and in_window and len(rows) == 2 and silent_row[6] == f"{topic}:0,1,2,3"
                and silent_row[8] == partitions_text(held.get("target_assignment") or {}), tool[-800:])
        members.append(Member("confluent-kafka", b, topic, group, protocol="consumer", assignor="range"))

        # Converged: stable, every member at the target epoch with exactly its target.
        def stable():
            try:
                seen["d"] = cli.json("groups", "describe", group)
            except RuntimeError:
                return False
            x = seen["d"]
            return (x["state"] == "Stable" and len(x["members"]) == 2 and x["reconciling_members"] == 0
                    and all(m["assignment"] for m in x["members"]))

        ok = wait_until(stable, 90)
        d = seen["d"]
        r.check(f"{tag} groups describe (json) once converged: Stable, no member reconciling, each at the target epoch",
                ok and silent["member_id"] not in {m["member_id"] for m in d["members"]} and all(m["member_epoch"] == d["assignment_epoch"] and m["assignment"] == m["target_assignment"]
                           and m["member_type"] == "consumer" and m["subscribed_topics"] == [topic] for m in d["members"])
                and d["group_epoch"] == d["assignment_epoch"], json.dumps(d)[:800])
        code, tool = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group,
                                "--members", "--verbose")
        theirs = sorted((row[1], row[5], row[6], row[7], row[8]) for row in kafka_rows(tool, group) if len(row) == 9)
        mine = sorted((m["member_id"], str(m["member_epoch"]), partitions_text(m["assignment"]), str(d["assignment_epoch"]),
                       partitions_text(m["target_assignment"])) for m in d["members"])
        r.check(f"{tag} kafka-consumer-groups --describe --members --verbose: the same members, epochs, owned and target partitions",
                code == 0 and theirs == mine, f"Kafka's tool {theirs} vs weir {mine}")
        code, tool = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group,
                                "--state", "--verbose")
        row = (kafka_rows(tool, group) or [[]])[0]
        r.check(f"{tag} kafka-consumer-groups --describe --state --verbose: assignor, state, group and target epochs, members",
                code == 0 and row[3:] == ["range", "Stable", str(d["group_epoch"]), str(d["assignment_epoch"]), "2"],
                f"{row} vs weir {d['group_epoch']}/{d['assignment_epoch']}")
        code, tool = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group)
        owners = {int(row[2]): row[6] for row in kafka_rows(tool, group) if len(row) >= 7 and row[1] == topic}
        mine = {p["partition"]: p["member_id"] for p in d["partitions"]}
        r.check(f"{tag} kafka-consumer-groups --describe: each partition's member as weir shows it",
                code == 0 and owners == mine and len(owners) == 4, f"Kafka's tool {owners} vs weir {mine}")

        # ---- lists: weir's, and Kafka's kafka-groups and kafka-consumer-groups
        members.append(Member("confluent-kafka", b, topic, classic))
        wait_until(lambda: members[2].assignment == [0, 1, 2, 3], 60)
        wait_until(lambda: cli.json("groups", "describe", classic)["state"] == "Stable", 30)
        listed = {g["group"]: g for g in cli.json("groups", "list")}
        mine = listed.get(group, {})
        theirs = listed.get(classic, {})
        r.check(f"{tag} groups list (json): protocol, assignor, members, epochs and reconciling members of each group",
                {k: mine.get(k) for k in ("group_protocol", "state", "assignor", "members", "group_epoch", "assignment_epoch",
                                          "reconciling_members", "protocol_type")}
                == {"group_protocol": "consumer", "state": "Stable", "assignor": "range", "members": 2,
                    "group_epoch": d["group_epoch"], "assignment_epoch": d["assignment_epoch"], "reconciling_members": 0,
                    "protocol_type": "consumer"}
                and {k: theirs.get(k) for k in ("group_protocol", "state", "assignor", "members", "group_epoch")}
                == {"group_protocol": "classic", "state": "Stable", "assignor": "range", "members": 1, "group_epoch": None},
                f"{mine} {theirs}")
        code, out, err = cli("groups", "list")
        rows = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.split()}
        r.check(f"{tag} groups list (table): STATE, PROTOCOL, ASSIGNOR, MEMBERS, GROUP-EPOCH, TARGET-EPOCH, RECONCILING",
                rows.get("GROUP") == ["STATE", "PROTOCOL", "ASSIGNOR", "MEMBERS", "GROUP-EPOCH", "TARGET-EPOCH", "RECONCILING"]
                and rows.get(group) == ["Stable", "consumer", "range", "2", str(d["group_epoch"]), str(d["assignment_epoch"]), "0"]
                and rows.get(classic) == ["Stable", "classic", "range", "1", "-", "-", "-"], out)
        consumer_only = {g["group"] for g in cli.json("groups", "list", "--protocol", "consumer")}
        classic_only = {g["group"] for g in cli.json("groups", "list", "--protocol", "classic")}
        r.check(f"{tag} groups list --protocol consumer|classic", group in consumer_only and classic not in consumer_only
                and classic in classic_only and group not in classic_only, f"{consumer_only} {classic_only}")
        code, out = kafka_tool("kafka-groups", "--bootstrap-server", b, "--list")
        rows = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.split()}
        r.check(f"{tag} kafka-groups --list: the consumer group's type and protocol",
                code == 0 and rows.get(group) == ["Consumer", "consumer"] and rows.get(classic) == ["Classic", "consumer"], out[-500:])
        code, out = kafka_tool("kafka-groups", "--bootstrap-server", b, "--list", "--group-type", "consumer")
        listed = {l.split()[0] for l in out.splitlines() if l.split()}
        r.check(f"{tag} kafka-groups --list --group-type consumer", code == 0 and group in listed and classic not in listed, out[-500:])
        code, out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--list", "--type")
        rows = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.split()}
        r.check(f"{tag} kafka-consumer-groups --list --type", code == 0 and rows.get(group) == ["Consumer"]
                and rows.get(classic) == ["Classic"], out[-500:])
        code, out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", classic,
                               "--state")
        row = (kafka_rows(out, classic) or [[]])[0]
        r.check(f"{tag} kafka-consumer-groups --describe --state of a classic group next to it", row[3:] == ["range", "Stable", "1"],
                out[-400:])
    finally:
        for m in members:
            m.leave()

    # ---- the group configs at work: a silent member, its heartbeat interval and session
    code, out = configs("--entity-name", quiet, "--alter", "--add-config",
                        "consumer.heartbeat.interval.ms=1500,consumer.session.timeout.ms=12000")
    joined = time.time()
    j = consumer_heartbeat.join(b, quiet, topic)
    other = consumer_heartbeat.join(b, f"cg-other-{uid()}", topic)
    r.check(f"{tag} a joining member is told its group's heartbeat interval (1500 ms; the broker's is 500)",
            code == 0 and j["error"] == 0 and j["heartbeat_interval_ms"] == 1500 and other["heartbeat_interval_ms"] == 500,
            f"{j} {other}")

    def quiet_members():
        try:
            return len(cli.json("groups", "describe", quiet)["members"])
        except RuntimeError:
            return 0

    time.sleep(max(0.0, joined + 8 - time.time()))
    present = quiet_members()
    gone = wait_until(lambda: quiet_members() == 0, 20)
    elapsed = time.time() - joined
    r.check(f"{tag} a silent member outlives the broker's session timeout (6 s) under its group's (12 s), then is removed",
            present == 1 and gone and 11.5 <= elapsed <= 20, f"members at 8 s: {present}; removed after {elapsed:.1f} s")

    # ---- kept across a restart, and still applied
    broker.restart()
    code, out = configs("--entity-name", group, "--describe")
    r.check(f"{tag} group configs survive a broker restart", code == 0 and lines(out)[1:] == dynamic, out[-600:])
    j = consumer_heartbeat.join(b, group, topic)
    r.check(f"{tag} after the restart a joining member is told its group's heartbeat interval",
            j["error"] == 0 and j["heartbeat_interval_ms"] == 10000, str(j))
    code, out = configs("--entity-name", group, "--alter", "--delete-config",
                        "consumer.heartbeat.interval.ms,consumer.session.timeout.ms")
    code2, out2 = configs("--entity-name", group, "--describe")
    r.check(f"{tag} kafka-configs --delete-config returns the group to the broker's settings",
            code == 0 and code2 == 0 and lines(out2) == [f"Dynamic configs for group {group} are:"], out + out2)


def run_offline(r, weir_bin):
    work = tempfile.mkdtemp(prefix="weir-cli-")
    cli = Cli(weir_bin, "", work)
    t0 = time.time()
    code, out, err = cli("topics", "list", "--bootstrap", "127.0.0.1:1", bootstrap=False)
    r.check("unreachable broker: clear error within a few seconds", code != 0 and "cannot connect to broker at 127.0.0.1:1" in err
            and time.time() - t0 < 6, f"{err.strip()} after {time.time() - t0:.1f}s")
    cfg = os.path.join(work, "config.toml")
    with open(cfg, "w") as f:
        f.write('default_profile = "nowhere"\n[profiles.nowhere]\nbootstrap = "127.0.0.1:1"\n[profiles.other]\nbootstrap = "127.0.0.1:2"\n')
    code, out, err = cli("topics", "list", "--config", cfg, bootstrap=False)
    r.check("config file: the default profile's bootstrap is used", code != 0 and "127.0.0.1:1" in err, err)
    code, out, err = cli("topics", "list", "--config", cfg, "--profile", "other", bootstrap=False)
    r.check("config file: --profile picks another", code != 0 and "127.0.0.1:2" in err, err)
    code, out, err = cli("topics", "list", "--config", cfg, "--profile", "missing", bootstrap=False)
    r.check("config file: an unknown profile is named with the ones that exist", code != 0 and "profile 'missing'" in err and "other" in err, err)
    code, out, err = cli("topics", "list", bootstrap=False, env={"WEIR_BOOTSTRAP": "127.0.0.1:3"})
    r.check("WEIR_BOOTSTRAP is used", code != 0 and "127.0.0.1:3" in err, err)
    code, out, err = cli("completions", "bash", bootstrap=False)
    r.check("shell completions", code == 0 and "weir" in out and "groups" in out, err)
    helps = [("topics", "create"), ("topics", "describe"), ("groups", "describe"), ("groups", "reset-offsets"), ("produce",), ("consume",)]
    missing = [h for h in helps if "Example" not in cli(*h, "--help", bootstrap=False)[1]]
    r.check("--help shows examples", not missing, str(missing))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weir_bin")
    ap.add_argument("--broker", default="both", choices=["weir", "kafka", "both"])
    ap.add_argument("--only", choices=["cli", "consumer-groups"], help="run one scenario")
    a = ap.parse_args()
    a.weir_bin = os.path.abspath(a.weir_bin)
    r = Report()
    if a.only is None:
        run_offline(r, a.weir_bin)
    for name in (["weir", "kafka"] if a.broker == "both" else [a.broker]):
        broker = Weir(a.weir_bin) if name == "weir" else Kafka()
        broker.start()
        try:
            if a.only in (None, "cli"):
                run_against(r, broker, a.weir_bin)
        except Exception as e:  # a scenario that cannot run is a failure
            r.check(f"[{name}] CLI scenario ran", False, repr(e))
        try:
            if a.only in (None, "consumer-groups"):
                consumer_group_scenario(r, broker, a.weir_bin)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            r.check(f"[{name}] consumer group scenario ran", False, repr(e))
        finally:
            broker.stop()
    r.finish()


if __name__ == "__main__":
    main()
