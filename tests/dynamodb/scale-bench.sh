#!/usr/bin/env bash
# Runs the DynamoDB scale bench (functions/aws/benches/scale.rs) against AWS's DynamoDB Local,
# as root:
#
#   cargo bench -p reclaim-aws --bench scale --no-run     # build first, with the network
#   unshare -n bash tests/dynamodb/scale-bench.sh DIR     # then run it in a private network
#
# Inside a private network namespace whose only interface is loopback, because DynamoDB Local
# listens on every interface. Starts DynamoDB Local with its database in files under DIR (a
# million candidates do not fit in memory), runs the bench with RECLAIM_DYNAMODB_URL pointing at
# it and RECLAIM_BENCH_DIR=DIR (where the marker of a loaded table is kept), and stops it on
# any exit. The environment passes through (RECLAIM_SCALE_CANDIDATES, RECLAIM_SCALE_SECS,
# CARGO_TARGET_DIR); the table stays in DIR for the next run.
set -euo pipefail

dir="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

ip link set lo up

# RECLAIM_DYNAMODB_IN_MEMORY=1 keeps the database in memory instead (faster, gone at exit).
if [ "${RECLAIM_DYNAMODB_IN_MEMORY:-}" = 1 ]; then
    node "$here/start.mjs" 8000 >"$dir/dynamodb-local.log" 2>&1 &
else
    node "$here/start.mjs" 8000 "$dir" >"$dir/dynamodb-local.log" 2>&1 &
fi
local_pid="$!"
cleanup() {
    kill "$local_pid" 2>/dev/null || true
    wait "$local_pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 150); do
    (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break
    sleep 0.2
done
(exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null \
    || { echo "DynamoDB Local did not start; see $dir/dynamodb-local.log"; exit 1; }
echo "DynamoDB Local at http://127.0.0.1:8000 (private network), logging to $dir"

export RECLAIM_DYNAMODB_URL=http://127.0.0.1:8000
export RECLAIM_BENCH_DIR="$dir"
cargo bench --locked --offline -p reclaim-aws --bench scale "$@"
echo "DynamoDB Local's memory at the end (RSS, KiB):"
ps -o rss=,args= --ppid "$local_pid" | cut -c1-60
