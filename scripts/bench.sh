#!/usr/bin/env bash
# Benchmarks (issue 5): builds the plugins and weft in release, then runs every variant of
# weft-bench on one workload and prints the table. Arguments go to weft-bench, e.g.
#   scripts/bench.sh --json target/bench.json          # the full run (1,000,000 events)
#   scripts/bench.sh --quick --skip-kafka              # a smoke run without a broker
# The Kafka variants start a tansu broker (tansu on the PATH, in ~/.cargo/bin, or $TANSU).
# Criterion microbenchmarks: cargo bench -p weft-bench
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --release -p weft-host -p weft-bench
exec target/release/weft-bench "$@"
