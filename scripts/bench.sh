#!/usr/bin/env bash
# Benchmarks (issue 12): builds the plugins, weft and weft-bench in release, then runs every
# variant on one workload and writes the report the README's Performance section shows:
# over Kafka (passthrough, fused, unfused, and without weft the one-hop floor and a two-hop
# relay) throughput, CPU-seconds per million events, latency at steady rates and at
# saturation, idle CPU, peak RSS per process; in memory native against the fused Wasm chain;
# issue 12's targets, met or not (latency over the floor, and over the relay).
#   scripts/bench.sh                    # the full run, ~10 min on 2 cores after the build
#   scripts/bench.sh --quick            # a fast functional run, ~2 min
#   scripts/bench.sh --quick --skip-kafka   # without a broker
#   scripts/bench.sh --kafka-only --only passthrough,relay,floor --rates 2000 \
#       --source-property fetch.wait.max.ms=2     # try a client setting (weft and relay)
# Writes target/bench.md (Markdown tables) and target/bench.json; later arguments win, e.g.
# --json other.json. Progress and the expected duration go to stderr. The Kafka variants start
# a tansu broker (tansu on the PATH, in ~/.cargo/bin, or $TANSU).
# Criterion microbenchmarks: cargo bench -p weft-bench
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --release -p weft-host --bin weft -p weft-bench
started=$(date +%s)
export WEFT_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
target/release/weft-bench --json target/bench.json --markdown target/bench.md "$@"
echo "scripts/bench.sh: the benchmark took $(($(date +%s) - started)) s" >&2
