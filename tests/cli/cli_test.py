#!/usr/bin/env python3
"""Runs every `weir` CLI command against weir and against Apache Kafka, and checks the
table and JSON outputs, the reset plan/execute/undo cycle on a real group, the numbers
against Kafka's own kafka-consumer-groups, and the error messages.

Usage: cli_test.py WEIR_BIN [--broker weir|kafka|both]   (default both)
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
    a = ap.parse_args()
    a.weir_bin = os.path.abspath(a.weir_bin)
    r = Report()
    run_offline(r, a.weir_bin)
    for name in (["weir", "kafka"] if a.broker == "both" else [a.broker]):
        broker = Weir(a.weir_bin) if name == "weir" else Kafka()
        broker.start()
        try:
            run_against(r, broker, a.weir_bin)
        except Exception as e:  # a scenario that cannot run is a failure
            r.check(f"[{name}] CLI scenario ran", False, repr(e))
        finally:
            broker.stop()
    r.finish()


if __name__ == "__main__":
    main()
