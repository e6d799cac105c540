//! The plugin components the tests load, found by name: the build script builds them (the
//! shipped processors, the test-only `hostile`, `raw`, `bloated`, `own_alloc` and the
//! versions of `stamp`: `stamp_1_0`, `stamp_1_1`, `stamp_1_2`, and `wit01`, built against the
//! 0.1.0 contract) for
//! wasm32-wasip2, so `cargo test` needs no `scripts/build-plugins.sh` first.
//!
//! Test crates dev-depend on this one instead of each guessing where the plugins are.

use std::path::PathBuf;

/// The folder of the built components: `<target>/wasm32-wasip2/plugin/`, the one
/// `scripts/build-plugins.sh` and the demo use.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("WEFT_PLUGIN_DIR"))
}

/// The built component `name` (its library name: `filter`, `raw`, `own_alloc`).
///
/// Panics when it is missing, so a test that needs it fails instead of skipping.
pub fn plugin(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the build script of weft-test-components builds it; was it deleted \
         since? `scripts/build-plugins.sh` builds it again",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_is_built_and_is_a_component() {
        for name in [
            "filter",
            "project",
            "mask",
            "enrich",
            "hostile",
            "raw",
            "bloated",
            "own_alloc",
            "stamp_1_0",
            "stamp_1_1",
            "stamp_1_2",
            "wit01",
        ] {
            let bytes = std::fs::read(plugin(name)).expect("read the component");
            // A component's preamble: the wasm magic, then version 0x0d and layer 1 (a core
            // module has version 1, layer 0).
            assert_eq!(
                bytes.get(..8),
                Some(&b"\0asm\x0d\0\x01\0"[..]),
                "{name}.wasm is not a component"
            );
        }
    }

    /// The script and the build script must build the same packages in the same cargo
    /// invocations, or each would rebuild what the other built (features unify per
    /// invocation) and CI would compile the plugins twice.
    #[test]
    fn build_plugins_sh_builds_what_the_build_script_builds() {
        let script = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-plugins.sh"),
        )
        .expect("read scripts/build-plugins.sh");
        // Each `cargo build` of the script, as the sorted packages it names.
        let mut invocations: Vec<Vec<&str>> = script
            .split("cargo build")
            .skip(1)
            .map(|invocation| {
                let mut packages: Vec<&str> = invocation
                    .split_whitespace()
                    .filter(|word| *word != "\\")
                    .skip_while(|word| *word != "-p")
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .take_while(|pair| pair[0] == "-p" && pair.len() == 2)
                    .map(|pair| pair[1])
                    .collect();
                packages.sort_unstable();
                packages
            })
            .collect();
        invocations.sort();
        let mut expected: Vec<Vec<&str>> = vec![
            env!("WEFT_PLUGIN_PACKAGES").split(' ').collect(),
            vec![env!("WEFT_OWN_ALLOCATOR_PACKAGE")],
        ];
        for packages in &mut expected {
            packages.sort_unstable();
        }
        expected.sort();
        assert_eq!(invocations, expected);
    }
}
