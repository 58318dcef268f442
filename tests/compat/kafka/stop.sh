#!/usr/bin/env bash
# Stops the Apache Kafka started by start.sh in DIR (SIGTERM, then SIGKILL after 60 s).
set -euo pipefail
dir="${1:?usage: stop.sh DIR}"
pidfile="$dir/kafka.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
