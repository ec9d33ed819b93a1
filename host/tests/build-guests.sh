#!/usr/bin/env bash
# Builds the plugin host's test guests (host/tests/guests) into WebAssembly components and
# prints the directory that holds them (hostile.wasm, wrong_world.wasm, source_guest.wasm) as the last line.
#
# Two paths, as for plugins/build.sh:
#  1. rustup's wasm32-wasip2 target (installed or added here): cargo emits components directly.
#  2. Where rustup cannot fetch the target: Debian's rustc-web + rust-web-src + lld-16 build for
#     wasm32-unknown-unknown with -Zbuild-std, then plugins/tools/componentize (wit-component)
#     turns each module into a component ($COMPONENTIZE overrides the tool).
#
# Guests build in their own target dir so they never contend with the host build's lock:
# $RECLAIM_WASM_TARGET_DIR, else $CARGO_TARGET_DIR/wasm-guests, else ~/.cache/reclaim-wasm-target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
manifest="$here/guests/Cargo.toml"
if [[ -n "${RECLAIM_WASM_TARGET_DIR:-}" ]]; then
  target_dir="$RECLAIM_WASM_TARGET_DIR"
elif [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  target_dir="$CARGO_TARGET_DIR/wasm-guests"
else
  target_dir="$HOME/.cache/reclaim-wasm-target"
fi
out="$target_dir/host-guests"
mkdir -p "$out"
guests=(hostile wrong_world source_guest)

# Variables that a surrounding `cargo test` sets for its own build must not leak into ours.
unset CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_MAKEFLAGS

# RECLAIM_BUILD_PATH = rustup | debian | auto (default), as for plugins/build.sh.
build_path="${RECLAIM_BUILD_PATH:-auto}"

have_wasip2() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 && return 0
  rustup target add wasm32-wasip2 >&2 2>/dev/null
}

build_rustup() {
  cargo build --quiet --release --target wasm32-wasip2 \
    --manifest-path "$manifest" --target-dir "$target_dir" >&2
  for g in "${guests[@]}"; do
    cp -f "$target_dir/wasm32-wasip2/release/$g.wasm" "$out/$g.wasm"
  done
  echo wasip2 >"$out/BUILD_PATH"
}

build_debian() {
  echo "build-guests: using Debian's Rust for wasm32-unknown-unknown" >&2
  if [[ ! -x /usr/bin/rustc ]] || ! command -v wasm-ld-16 >/dev/null 2>&1; then
    apt-get update >&2 && apt-get install -y --no-install-recommends \
      rustc-web cargo-web rust-web-src lld-16 >&2
  fi
  local host_triple componentize
  host_triple="$(/usr/bin/rustc -vV | sed -n 's/^host: //p')"
  # The same componentizer the plugins use (wit-component), built with Debian's Rust.
  (cd "$repo/plugins/tools/componentize" && RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$target_dir/tools" \
    /usr/bin/cargo build --quiet --release --target "$host_triple") >&2
  componentize="${COMPONENTIZE:-$target_dir/tools/$host_triple/release/reclaim-componentize}"
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-16 \
    /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort --manifest-path "$manifest" --target-dir "$target_dir" >&2
  for g in "${guests[@]}"; do
    "$componentize" "$target_dir/wasm32-unknown-unknown/release/$g.wasm" "$out/$g.wasm" >&2
  done
  # No WASI on this path: guests have no stdio, env or args (std's stubs trap or do nothing).
  echo debian >"$out/BUILD_PATH"
}

case "$build_path" in
  rustup) build_rustup ;;
  debian) build_debian ;;
  auto)
    if have_wasip2; then
      build_rustup
    else
      echo "build-guests: rustup cannot provide wasm32-wasip2; falling back" >&2
      build_debian
    fi
    ;;
  *) echo "RECLAIM_BUILD_PATH must be rustup, debian or auto" >&2; exit 1 ;;
esac
echo "$out"
