#!/usr/bin/env bash
# Sets everything up and runs the demo pipeline (demo/pipeline.toml) on bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> building the plugins (wasm32-wasip2 components)"
scripts/build-plugins.sh
echo "==> building weft"
cargo build -p weft-host --bin weft
echo "==> weft validate demo/pipeline.toml"
target/debug/weft validate demo/pipeline.toml
echo "==> weft run demo/pipeline.toml"
target/debug/weft run demo/pipeline.toml
echo
echo "==> first events of demo/out/titles.jsonl"
head -n 3 demo/out/titles.jsonl
echo "==> dead letters (demo/out/dead-letters.jsonl)"
cat demo/out/dead-letters.jsonl
