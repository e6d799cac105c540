#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): set-up, lints, plugins, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --kafka
# A full build of the suite writes several GB under target/; a disk that fills mid-link
# shows up as a linker "Bus error", far from its cause, so say how much room there is.
# Measured where the builds go: the target folder may be elsewhere (CARGO_TARGET_DIR, or a
# symlink), and a trailing slash makes df follow a symlink to its filesystem.
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
free_kb=$(df -Pk "$target_dir/" | awk 'NR == 2 { print $4 }')
echo "==> free disk: $((free_kb / 1024 / 1024)) GiB where the builds go ($target_dir)"
if [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
    echo "warning: under 8 GiB free; the build may fail with a linker Bus error." >&2
    echo "         'cargo clean' (or removing old target/debug/deps) frees the space." >&2
fi
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
