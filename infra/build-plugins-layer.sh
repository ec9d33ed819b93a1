#!/usr/bin/env bash
# Builds the Lambda layer that carries the effects function's plugins, precompiled for the
# function's machine (arm64, provided.al2023) with the engine settings the function uses:
#
#   infra/build/plugins-layer/reclaim-plugins/<id>/{reclaim-plugin.toml, plugin.wasm, plugin.cwasm}
#
# Lambda unpacks a layer under /opt, so the function finds them in /opt/reclaim-plugins
# (RECLAIM_PLUGINS_DIR in infra/template.yaml) and loads them with `deserialize` at init.
# Run it before `sam build` / `sam package`; the template's PluginsLayer points here.
#
# Usage: infra/build-plugins-layer.sh [PLUGINS_DIR] [TARGET]
#   PLUGINS_DIR  plugins as plugins/build.sh lays them out, with the manifests as deployed
#                (default: plugins/dist, built first when missing)
#   TARGET       target triple of the function (default: aarch64-unknown-linux-gnu)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
src="${1:-$root/plugins/dist}"
target="${2:-aarch64-unknown-linux-gnu}"
layer="$here/build/plugins-layer"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reclaim-target}"

if [ ! -d "$src" ] || ! ls "$src"/*/reclaim-plugin.toml >/dev/null 2>&1; then
    bash "$root/plugins/build.sh" "$src"
fi
# The precompiler runs here, on the build machine; only its output is for the target.
(cd "$root" && cargo build --locked --release -p reclaim-host --bin reclaim-plugin)
rm -rf "$layer"
mkdir -p "$layer"
"$CARGO_TARGET_DIR/release/reclaim-plugin" precompile --target "$target" "$src" "$layer/reclaim-plugins"
echo "layer contents in $layer (for $target)"
