#!/usr/bin/env bash
# Starts Apache Kafka (KRaft, single node, no ZooKeeper) on 127.0.0.1:PORT with its data
# and logs in DIR, and returns once it answers clients. A DIR formatted by an earlier run
# is reused, so stop.sh then start.sh is a broker restart with its data kept.
#
#   start.sh PORT DIR        KAFKA_HEAP (default -Xmx768m) sets the JVM heap.
#
# Three more variables shape a DIR's first start (tests/security uses them for its TLS and
# SASL listeners); unset, the broker has the PLAINTEXT listener only:
#   KAFKA_EXTRA_LISTENERS   NAME://127.0.0.1:PORT,... listened on and advertised beside
#                           PLAINTEXT (the readiness probe's) and CONTROLLER
#   KAFKA_EXTRA_PROPERTIES  a file whose lines are appended to server.properties; a key it
#                           repeats (listener.security.protocol.map) takes its value
#   KAFKA_FORMAT_ARGS       more arguments for the storage tool's format, split at spaces
#                           (--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]')
set -euo pipefail
port="${1:?usage: start.sh PORT DIR}"
dir="${2:?usage: start.sh PORT DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
cp="$("$here/classpath.sh")"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
props="$dir/server.properties"
if [ ! -f "$props" ]; then
    extra="${KAFKA_EXTRA_LISTENERS:+,$KAFKA_EXTRA_LISTENERS}"
    ctrl="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl$extra
advertised.listeners=PLAINTEXT://127.0.0.1:$port$extra
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.session.timeout.ms=6000
group.consumer.min.session.timeout.ms=6000
group.consumer.heartbeat.interval.ms=500
group.consumer.min.heartbeat.interval.ms=500
num.partitions=1
PROPS
    if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
        cat "$KAFKA_EXTRA_PROPERTIES" >> "$props"
    fi
    # A cluster id starting with "-" would be read as an option by the storage tool.
    cluster="$(python3 -c 'import base64,uuid
while (c := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(c)')"
    # Split at spaces without glob expansion: "[name=...]" is a glob pattern.
    read -r -a format_args <<< "${KAFKA_FORMAT_ARGS:-}"
    java -cp "$cp" kafka.tools.StorageTool format -t "$cluster" -c "$props" --standalone \
        ${format_args[@]+"${format_args[@]}"} >"$dir/format.log" 2>&1
fi
# shellcheck disable=SC2086
nohup java ${KAFKA_HEAP:--Xmx768m} -XX:+UseG1GC -Dlog4j2.configurationFile= -cp "$cp" kafka.Kafka "$props" >>"$dir/kafka.log" 2>&1 &
echo $! > "$dir/kafka.pid"
python3 - "$port" "$(cat "$dir/kafka.pid")" <<'PY'
import os, socket, struct, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
# ApiVersions v0 as the readiness probe: Kafka answers it only once its listener is up.
req = struct.pack(">hhih", 18, 0, 1, 5) + b"ready"
deadline = time.time() + 120
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("Apache Kafka exited during start-up; see kafka.log in its directory")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            if len(s.recv(4)) == 4:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("Apache Kafka did not answer within 120 s; see kafka.log in its directory")
PY
