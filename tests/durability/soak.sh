#!/usr/bin/env bash
# On-demand soak: many more kill -9 rounds than CI runs. Usage: soak.sh [ROUNDS] [SEED]
# ROUNDS (default 500) is for the acks=all crash test; the transactional crash test that
# follows runs WEIR_TXN_SOAK_ROUNDS kills (default 100) with the same seed.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED="${2:-$RANDOM}"
cargo build --release -p weir
python3 tests/durability/crash.py "$PWD/target/release/weir" "${1:-500}" "$SEED"
python3 tests/durability/txn_crash.py "$PWD/target/release/weir" "${WEIR_TXN_SOAK_ROUNDS:-100}" "$SEED"
