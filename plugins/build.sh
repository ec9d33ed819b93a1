#!/usr/bin/env bash
# Builds every plugin in this workspace (release) and lays them out for the host:
#
#   OUT/<id>/plugin.wasm
#   OUT/<id>/reclaim-plugin.toml
#
# Usage: plugins/build.sh [OUT]      (default OUT: $RECLAIM_PLUGINS_OUT, else plugins/dist)
#
# Two ways to get a component, tried in this order:
#   a) rustup's wasm32-wasip2 target: `cargo build --target wasm32-wasip2` emits components.
#   b) where rustup cannot fetch that target: Debian's Rust (rustc-web, cargo-web,
#      rust-web-src, lld-16) builds wasm32-unknown-unknown core modules with -Zbuild-std, and
#      tools/componentize (wit-component) turns each into a component.
# RECLAIM_BUILD_PATH=rustup|debian forces one of them.
#
# Compiled artifacts go to $RECLAIM_WASM_TARGET_DIR, default
# ${CARGO_TARGET_DIR:-$HOME/.cache/reclaim-target}/wasm, so repeated builds (and the tests,
# which call this script) share one cache without colliding with host builds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${RECLAIM_PLUGINS_OUT:-$here/dist}}"
target_dir="${RECLAIM_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/reclaim-target}/wasm}"
build_path="${RECLAIM_BUILD_PATH:-auto}"

log() { printf 'plugins/build.sh: %s\n' "$*" >&2; }

# Plugin crates: every directory here with a manifest. The crate name is the directory name.
plugins=()
for manifest in "$here"/*/reclaim-plugin.toml; do
    plugins+=("$(basename "$(dirname "$manifest")")")
done
if [ "${#plugins[@]}" -eq 0 ]; then
    log "no plugins found under $here"
    exit 1
fi

manifest_id() {
    sed -n 's/^id[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

build_rustup() {
    command -v rustup >/dev/null 2>&1 || return 1
    rustup target add wasm32-wasip2 >&2 || return 1
    log "building with rustup's wasm32-wasip2 target into $target_dir"
    (cd "$here" && CARGO_TARGET_DIR="$target_dir" cargo build --locked --release \
        --target wasm32-wasip2 "${plugins[@]/#/--package=}") >&2 || return 2
    artifacts="$target_dir/wasm32-wasip2/release"
    componentize=""
}

debian_tools_present() {
    [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && command -v wasm-ld-16 >/dev/null 2>&1
}

build_debian() {
    if ! debian_tools_present; then
        log "installing Debian's Rust for wasm (rustc-web cargo-web rust-web-src lld-16)"
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            log "need root and apt-get to install them"
            return 1
        fi
        apt-get update >&2 && apt-get install -y --no-install-recommends \
            rustc-web cargo-web rust-web-src lld-16 >&2 || return 1
    fi
    log "building with Debian's Rust for wasm32-unknown-unknown into $target_dir"
    local host_triple
    host_triple="$(/usr/bin/rustc -vV | sed -n 's/^host: //p')"
    (cd "$here/tools/componentize" && RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$target_dir/tools" \
        /usr/bin/cargo build --release --target "$host_triple") >&2 || return 2
    componentize="$target_dir/tools/$host_triple/release/reclaim-componentize"
    (cd "$here" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-16 CARGO_TARGET_DIR="$target_dir" \
        /usr/bin/cargo build --release --target wasm32-unknown-unknown \
        -Zbuild-std=std,panic_abort "${plugins[@]/#/--package=}") >&2 || return 2
    artifacts="$target_dir/wasm32-unknown-unknown/release"
}

artifacts=""
componentize=""
case "$build_path" in
    rustup) build_rustup || { log "rustup build failed"; exit 1; } ;;
    debian) build_debian || { log "Debian build failed"; exit 1; } ;;
    auto)
        rc=0
        build_rustup || rc=$?
        if [ "$rc" -eq 2 ]; then
            log "cargo build failed (the toolchain is there, so the code is at fault)"
            exit 1
        elif [ "$rc" -ne 0 ]; then
            log "rustup cannot provide wasm32-wasip2; falling back to Debian's Rust"
            build_debian || { log "Debian build failed"; exit 1; }
        fi
        ;;
    *) log "RECLAIM_BUILD_PATH must be rustup, debian or auto"; exit 1 ;;
esac

mkdir -p "$out"
for crate in "${plugins[@]}"; do
    manifest="$here/$crate/reclaim-plugin.toml"
    id="$(manifest_id "$manifest")"
    if [ -z "$id" ]; then
        log "$manifest has no id"
        exit 1
    fi
    built="$artifacts/${crate//-/_}.wasm"
    if [ ! -f "$built" ]; then
        log "missing build output $built"
        exit 1
    fi
    mkdir -p "$out/$id"
    if [ -n "$componentize" ]; then
        "$componentize" "$built" "$out/$id/plugin.wasm"
    else
        cp "$built" "$out/$id/plugin.wasm.tmp"
        mv "$out/$id/plugin.wasm.tmp" "$out/$id/plugin.wasm"
    fi
    cp "$manifest" "$out/$id/reclaim-plugin.toml"
    printf '%s\t%s bytes\n' "$id" "$(wc -c <"$out/$id/plugin.wasm" | tr -d ' ')"
done
log "plugins are in $out"
