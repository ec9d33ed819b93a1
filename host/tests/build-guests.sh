#!/usr/bin/env bash
# Builds the plugin host's test guests (host/tests/guests) into WebAssembly components and
# prints the directory that holds them (hostile.wasm, wrong_world.wasm) as the last line.
#
# Two paths, as for plugins/build.sh:
#  1. rustup's wasm32-wasip2 target (installed or added here): cargo emits components directly.
#  2. Where rustup cannot fetch the target: Debian's rustc-web + rust-web-src + lld-16 build for
#     wasm32-unknown-unknown with -Zbuild-std, then a componentizer turns the module into a
#     component ($COMPONENTIZE, else plugins/tools/componentize, else `wasm-tools component new`).
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
guests=(hostile wrong_world)

# Variables that a surrounding `cargo test` sets for its own build must not leak into ours.
unset CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_MAKEFLAGS

have_wasip2() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 && return 0
  rustup target add wasm32-wasip2 >&2 2>/dev/null
}

if have_wasip2; then
  cargo build --quiet --release --target wasm32-wasip2 \
    --manifest-path "$manifest" --target-dir "$target_dir" >&2
  for g in "${guests[@]}"; do
    cp -f "$target_dir/wasm32-wasip2/release/$g.wasm" "$out/$g.wasm"
  done
else
  echo "build-guests: wasm32-wasip2 not available from rustup; using Debian rustc-web" >&2
  if ! command -v wasm-ld-16 >/dev/null 2>&1 || [[ ! -x /usr/bin/rustc ]]; then
    apt-get install -y rustc-web cargo-web rust-web-src lld-16 >&2
  fi
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-16 \
    /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort --manifest-path "$manifest" --target-dir "$target_dir" >&2
  for g in "${guests[@]}"; do
    module="$target_dir/wasm32-unknown-unknown/release/$g.wasm"
    if [[ -n "${COMPONENTIZE:-}" ]]; then
      "$COMPONENTIZE" "$module" "$out/$g.wasm" >&2
    elif [[ -f "$repo/plugins/tools/componentize/Cargo.toml" ]]; then
      cargo run --quiet --release --manifest-path "$repo/plugins/tools/componentize/Cargo.toml" \
        --target-dir "$target_dir/tools" -- "$module" "$out/$g.wasm" >&2
    else
      wasm-tools component new "$module" -o "$out/$g.wasm" >&2
    fi
  done
fi
echo "$out"
