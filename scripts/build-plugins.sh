#!/usr/bin/env bash
# Builds the shipped processors (and the test-only hostile, raw, bloated, stamp and own-alloc ones)
# as WebAssembly components into target/wasm32-wasip2/plugin/*.wasm.
#
# The tests build the same components themselves (crates/test-components/build.rs) with the
# same two invocations into the same target dir, so whichever runs first, the other finds
# them built: keep the two lists in step (a test of weft-test-components checks).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile plugin --target wasm32-wasip2 \
    -p weft-plugin-filter -p weft-plugin-project -p weft-plugin-mask -p weft-plugin-enrich \
    -p weft-test-hostile -p weft-test-raw -p weft-test-bloated \
    -p weft-test-stamp-1-0 -p weft-test-stamp-1-1 -p weft-test-stamp-1-2 -p weft-test-wit01
# Alone: it uses the SDK without its allocator (default-features = false), which feature
# unification with the plugins above would turn back on.
cargo build --profile plugin --target wasm32-wasip2 -p weft-test-own-alloc
