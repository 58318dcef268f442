#!/usr/bin/env bash
# On-demand soak: many more kill -9 rounds than CI runs. Usage: soak.sh [ROUNDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p weir
python3 tests/durability/crash.py "$PWD/target/release/weir" "${1:-500}" "${2:-$RANDOM}"
