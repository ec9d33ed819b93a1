#!/usr/bin/env bash
# Builds the example plugins written in other languages than Rust and lays them out for the
# host, like plugins/build.sh does for the Rust ones:
#
#   OUT/<id>/plugin.wasm
#   OUT/<id>/reclaim-plugin.toml
#
# Usage: plugins/examples/build.sh OUT
#
#   python-seat-revoke   Python, componentize-py (from PyPI, into a venv under ~/.cache)
#   js-seat-revoke       JavaScript, @bytecodealliance/componentize-js (npm ci from the
#                        committed package-lock.json)
#
# Caches, all outside the checkout: the venv ($RECLAIM_EXAMPLES_VENV, default
# ~/.cache/reclaim-examples-venv), pip's cache, npm's cache (~/.cache/reclaim-npm) and the
# built components ($RECLAIM_EXAMPLES_CACHE, default ~/.cache/reclaim-examples-build), which
# are reused while the sources, the WIT and the tool versions are unchanged
# (RECLAIM_EXAMPLES_REBUILD=1 builds them again regardless).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
out="${1:?usage: plugins/examples/build.sh OUT}"
venv="${RECLAIM_EXAMPLES_VENV:-$HOME/.cache/reclaim-examples-venv}"
cache="${RECLAIM_EXAMPLES_CACHE:-$HOME/.cache/reclaim-examples-build}"
npm_cache="$HOME/.cache/reclaim-npm"
# Pinned like the npm side's lock file; bump deliberately and rebuild.
componentize_py_version="0.25.1"

log() { printf 'plugins/examples/build.sh: %s\n' "$*" >&2; }

manifest_id() {
    sed -n 's/^id[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

# A key over everything that shapes a component: its sources, the WIT, and the tool (version
# string or lock file). The manifest is copied beside it, not built in.
build_key() {
    local dir="$1" tool="$2"
    {
        printf '%s\n' "$tool"
        (cd "$dir" && find . -path ./node_modules -prune -o -type f \( -name '*.py' -o -name '*.js' \
            -o -name '*.mjs' -o -name 'package-lock.json' \) -print \
            | LC_ALL=C sort | xargs sha256sum)
        (cd "$wit" && find . -type f -name '*.wit' | LC_ALL=C sort | xargs sha256sum)
    } | sha256sum | cut -d' ' -f1
}

# Lays out one built component (from the cache) with its manifest.
install_plugin() {
    local dir="$1" built="$2" id
    touch "$built"
    id="$(manifest_id "$dir/reclaim-plugin.toml")"
    [ -n "$id" ] || { log "$dir/reclaim-plugin.toml has no id"; exit 1; }
    mkdir -p "$out/$id"
    cp "$built" "$out/$id/plugin.wasm.tmp"
    mv "$out/$id/plugin.wasm.tmp" "$out/$id/plugin.wasm"
    cp "$dir/reclaim-plugin.toml" "$out/$id/reclaim-plugin.toml"
    printf '%s\t%s bytes\n' "$id" "$(wc -c <"$out/$id/plugin.wasm" | tr -d ' ')"
}

build_python() {
    local dir="$here/python-seat-revoke" key built
    if [ ! -x "$venv/bin/python" ]; then
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    if [ "$("$venv/bin/componentize-py" --version 2>/dev/null | awk '{print $2}')" != "$componentize_py_version" ]; then
        log "installing componentize-py $componentize_py_version into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            "componentize-py==$componentize_py_version" >&2
    fi
    key="$(build_key "$dir" "componentize-py $componentize_py_version")"
    built="$cache/python-seat-revoke-$key.wasm"
    if [ ! -f "$built" ] || [ -n "${RECLAIM_EXAMPLES_REBUILD:-}" ]; then
        log "componentize-py: python-seat-revoke"
        mkdir -p "$cache"
        # Bindings are generated into the component, never into the source tree.
        (cd "$dir" && "$venv/bin/componentize-py" --quiet -d "$wit" -w reclaimer componentize \
            -p . app -o "$built.tmp") >&2
        mv "$built.tmp" "$built"
    fi
    install_plugin "$dir" "$built"
}

build_javascript() {
    local dir="$here/js-seat-revoke" key built
    command -v npm >/dev/null 2>&1 || { log "npm is needed for the JavaScript example"; exit 1; }
    key="$(build_key "$dir" "npm")"
    built="$cache/js-seat-revoke-$key.wasm"
    if [ ! -f "$built" ] || [ -n "${RECLAIM_EXAMPLES_REBUILD:-}" ]; then
        log "componentize-js: js-seat-revoke"
        # npm ci only when node_modules is not from the committed lock file.
        local lock stamp="$dir/node_modules/.reclaim-lock-sha256"
        lock="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
        if [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
            (cd "$dir" && npm ci --cache "$npm_cache" --no-audit --no-fund --loglevel=error) >&2
            printf '%s\n' "$lock" >"$stamp"
        fi
        mkdir -p "$cache"
        (cd "$dir" && node_modules/.bin/componentize-js --wit ../../../wit --world-name reclaimer \
            --out "$built.tmp" plugin.js) >&2
        mv "$built.tmp" "$built"
    fi
    install_plugin "$dir" "$built"
}

mkdir -p "$out"
build_python
build_javascript
# Builds not used for two weeks (older sources or tools) are dropped.
find "$cache" -name '*.wasm' -mtime +14 -delete 2>/dev/null || true
log "example plugins are in $out"
