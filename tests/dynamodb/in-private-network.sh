#!/usr/bin/env bash
# Runs the DynamoDB tests against AWS's DynamoDB Local. test.sh calls it as `unshare -n bash
# tests/dynamodb/in-private-network.sh PYTHON OUT TESTS`: inside a private network namespace
# whose only interface is loopback, because DynamoDB Local listens on every interface. Starts
# DynamoDB Local and a moto of its own (SES, Secrets Manager) there, runs TESTS (reclaim-aws's
# `dynamodb` test binary, already built) with RECLAIM_DYNAMODB_URL and RECLAIM_MOTO_URL
# pointing at them, and stops both on any exit.
set -euo pipefail

python="$1"
out="$2"
tests="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ip link set lo up

pids=()
cleanup() {
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Fixed ports: nothing else lives in this namespace.
node "$here/start.mjs" 8000 >"$out/dynamodb-local.log" 2>&1 &
pids+=("$!")
"$python" -m moto.server -H 127.0.0.1 -p 5000 >"$out/moto-private.log" 2>&1 &
pids+=("$!")

# Up when it answers HTTP at all (DynamoDB Local answers a bare GET with 400).
answers() {
    "$python" - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
}
for url in http://127.0.0.1:8000/ http://127.0.0.1:5000/moto-api/; do
    for _ in $(seq 1 150); do
        answers "$url" 2>/dev/null && break
        sleep 0.2
    done
    answers "$url" || { echo "nothing answers at $url; see $out/dynamodb-local.log and $out/moto-private.log"; exit 1; }
done
echo "DynamoDB Local at http://127.0.0.1:8000, moto at http://127.0.0.1:5000 (private network)"

export RECLAIM_DYNAMODB_URL=http://127.0.0.1:8000
export RECLAIM_MOTO_URL=http://127.0.0.1:5000
# The test binary test.sh built, run from its package's directory as cargo would; the ignored
# tests are those that need DynamoDB's own limits, which moto does not enforce.
cd "$here/../../functions/aws"
"$tests" --include-ignored
