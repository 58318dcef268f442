#!/usr/bin/env bash
# Two weir binaries side by side: `weir bench produce` (100 B records, acks=1, 3 partitions)
# against each in turn, alternating which goes first, so a change to the hot path is
# measured against the commit before it in one run on one machine.
#
#   bash bench/ab_binaries.sh OLD_WEIR NEW_WEIR [ROUNDS] [RECORDS]
#
# Prints each run, then the median of each binary and their ratio (new / old). The client
# is this checkout's target/release/weir.
set -euo pipefail
old=$1 new=$2 rounds=${3:-6} records=${4:-5000000}
client="$(cd "$(dirname "$0")/.." && pwd)/target/release/weir"
[ -x "$client" ] || { echo "build the client first: cargo build --release -p weir" >&2; exit 1; }

run() {
    local bin=$1 dir port pid out
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    out=$("$client" bench -b "127.0.0.1:$port" -o json produce --topic ab --records "$records" \
        --size 100 --partitions 3 --acks 1 | grep '^{' | tail -1)
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
    python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["records_per_s"]))' "$out"
}

olds=() news=()
for i in $(seq "$rounds"); do
    if [ $((i % 2)) = 1 ]; then news+=("$(run "$new")"); olds+=("$(run "$old")")
    else olds+=("$(run "$old")"); news+=("$(run "$new")"); fi
    echo "round $i: old ${olds[-1]} new ${news[-1]} records/s"
done
python3 - "${olds[*]}" "${news[*]}" <<'PY'
import statistics, sys
old = [int(x) for x in sys.argv[1].split()]
new = [int(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(old), statistics.median(new)
print(f"median old {mo:,.0f} new {mn:,.0f} records/s; new/old {mn / mo:.2f}")
PY
