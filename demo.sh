#!/usr/bin/env bash
# Runs the Reclaim demo on this machine: builds the vendor plugins (wasm components) and serves
# the demo organisation, its candidates, demo vendor endpoints on loopback and the outbox.
# Usage: ./demo.sh [DATABASE] [ADDRESS]
#   DATABASE  default demo.db; reusing it keeps the demo's state
#   ADDRESS   where to listen, default 127.0.0.1:8080 (or RECLAIM_ADDR), e.g. 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reclaim-target}"
bash plugins/build.sh plugins/dist >/dev/null
exec cargo run --release --locked -p reclaim-local --bin reclaim -- \
    serve --demo --db "${1:-demo.db}" --plugins plugins/dist \
    --addr "${2:-${RECLAIM_ADDR:-127.0.0.1:8080}}"
