#!/usr/bin/env bash
# Builds the shipped processors (and the test-only hostile, raw and bloated ones) as
# WebAssembly components into target/wasm32-wasip2/plugin/*.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile plugin --target wasm32-wasip2 \
    -p weft-plugin-filter -p weft-plugin-project -p weft-plugin-mask -p weft-plugin-enrich \
    -p weft-test-hostile -p weft-test-raw -p weft-test-bloated
