#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): set-up, lints, plugins, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --kafka
echo "==> cargo fmt --check"
cargo fmt --all --check
# The tests would build the plugins themselves (crates/test-components/build.rs); building
# them first shows their progress and errors plainly, and the build script then finds the
# same set already built.
echo "==> building the plugins"
scripts/build-plugins.sh
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> building the binaries the tests start (weft, weft-registry)"
cargo build -p weft-host -p weft-registry --bins
echo "==> cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
