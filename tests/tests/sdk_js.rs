//! The JavaScript SDK end to end: `weft new shout-js --lang js`, built with the command it
//! prints (npm install, then esbuild and componentize-js through the SDK's build script),
//! loaded by the real `weft`, run between shipped Rust processors; a JavaScript exception's
//! text in the dead letter, memory and deadline contained. Fails (never skips) when npm is
//! missing: `scripts/setup.sh --kafka`.

mod sdk_common;

use std::sync::OnceLock;

use sdk_common::{Built, check_chain, require, run_chain, run_sample, scaffold_and_build};

/// The memory a JavaScript processor is given in these runs: what the scaffold's sample
/// pipeline sets (SpiderMonkey's heap outgrows the default 64 MiB).
const JS_MEMORY_MB: u32 = 256;

fn shout() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        require("npm", "--version");
        require("node", "--version");
        scaffold_and_build("js", "shout-js", |root| {
            let file = root.join("src/processor.js");
            let source = std::fs::read_to_string(&file).expect("processor.js");
            let poison = r#"    if (record.text === 'boom') throw new TypeError('boom is not a word');
    if (record.text === 'hog') globalThis.hog = Array.from({ length: 64 }, () => new Float64Array(1 << 20));
    if (record.text === 'loop') for (;;) {}
    if (record.text === '') {"#;
            let edited = source.replacen("    if (record.text === '') {", poison, 1);
            assert_ne!(edited, source, "the scaffold's process() changed shape");
            std::fs::write(&file, edited).expect("write processor.js");
        })
    })
}

#[test]
fn the_scaffold_builds_loads_and_runs_its_sample_pipeline() {
    let built = shout();
    run_sample(built);
    eprintln!("js: first load {:.1} s", built.cold_load_s);
}

#[test]
fn a_js_processor_runs_between_rust_processors_and_its_failures_stay_contained() {
    let (outputs, dead) = run_chain(shout(), JS_MEMORY_MB);
    check_chain(
        "shout-js",
        &outputs,
        &dead,
        "TypeError: boom is not a word",
        JS_MEMORY_MB,
    );
}

#[test]
fn the_sdk_is_versioned_with_the_wit_package() {
    let version = sdk_common::wit_version();
    let sdk = weft_tests::workspace().join("guest-sdk/js");
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sdk.join("package.json")).expect("package.json"),
    )
    .expect("package.json is JSON");
    assert_eq!(package["version"], version.as_str());
    let index = std::fs::read_to_string(sdk.join("src/index.js")).expect("index.js");
    assert!(index.contains(&format!("WIT_PACKAGE = 'weft:processor@{version}'")));
}

#[test]
fn the_sdks_own_unit_tests_pass() {
    // The Runner natively: resolution, outcomes, rejects, parameter errors; run inside the
    // built project, whose `npm install` copied weft-guest and its dependencies.
    let built = shout();
    let out = std::process::Command::new("node")
        .args(["--test", "node_modules/weft-guest/test/"])
        .current_dir(&built.root)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        sdk_common::text(&out.stdout),
        sdk_common::text(&out.stderr)
    );
}
