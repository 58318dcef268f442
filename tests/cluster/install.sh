#!/usr/bin/env bash
# Installs the servers the cluster-mode tests run: PostgreSQL (from the system) and
# SeaweedFS's `weed` (built from the Go module pinned in seaweedfs/go.mod). Idempotent: a
# second run finds both and does nothing. The last line printed is `WEED=<path>`, which
# services.py also finds by itself.
set -euo pipefail
cd "$(dirname "$0")"

# 1. PostgreSQL: initdb, postgres and pg_ctl on PATH or under /usr/lib/postgresql/*/bin;
#    otherwise the Debian package, which needs root.
find_pg_bin() {
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
        dirname "$(command -v initdb)"
        return 0
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if pg_bin="$(find_pg_bin)"; then
    echo "postgresql: found $("$pg_bin/initdb" --version) in $pg_bin"
elif [ "$(id -u)" = 0 ]; then
    echo "postgresql: not found, installing the Debian package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }
    pg_bin="$(find_pg_bin)" || { echo "postgresql: installed, but initdb is still missing" >&2; exit 1; }
    echo "postgresql: installed $("$pg_bin/initdb" --version) in $pg_bin"
else
    echo "postgresql: initdb/pg_ctl/postgres not found and not root; install the postgresql package" >&2
    exit 1
fi

# 2. SeaweedFS: one binary per (module version, Go version), built once into the cache.
command -v go >/dev/null || { echo "seaweedfs: go is not on PATH" >&2; exit 1; }
seaweed_module=github.com/seaweedfs/seaweedfs
seaweed_version="$(awk -v m="$seaweed_module" '$1 == m || ($1 == "require" && $2 == m) { print $NF; exit }' seaweedfs/go.mod)"
[ -n "$seaweed_version" ] || { echo "seaweedfs: no version of $seaweed_module in seaweedfs/go.mod" >&2; exit 1; }
go_version="$(go env GOVERSION)"
cache_dir="${WEIR_TEST_CACHE:-$HOME/.cache/weir-test}/seaweedfs/${seaweed_version}-${go_version}"
weed="$cache_dir/weed"

if [ -x "$weed" ]; then
    echo "seaweedfs: cached $weed"
else
    echo "seaweedfs: building $seaweed_module@$seaweed_version with $go_version into $cache_dir (first time: minutes)"
    mkdir -p "$cache_dir"
    started_s="$(date +%s)"
    # Build to a temporary name so an interrupted build never leaves a "cached" binary.
    (cd seaweedfs && go build -trimpath -ldflags='-s -w' -o "$weed.partial" "$seaweed_module/weed")
    mv "$weed.partial" "$weed"
    elapsed_s="$(( $(date +%s) - started_s ))"
    echo "seaweedfs: built in ${elapsed_s}s, binary $(du -sh "$weed" | cut -f1)"
    echo "seaweedfs: Go module cache $(du -sh "$(go env GOMODCACHE)" | cut -f1), build cache $(du -sh "$(go env GOCACHE)" | cut -f1)"
fi
weed_version="$("$weed" version 2>/dev/null | head -1)" || true
echo "seaweedfs: $weed_version"
echo "WEED=$weed"
