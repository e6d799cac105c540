//! The Python SDK end to end: `weft new shout --lang python`, built with the command it
//! prints (componentize-py), loaded by the real `weft`, run between shipped Rust
//! processors; a Python exception's text in the dead letter, memory and deadline contained.
//! Fails (never skips) when componentize-py is missing: `scripts/setup.sh --kafka`.

mod sdk_common;

use std::sync::OnceLock;

use sdk_common::{Built, check_chain, require, run_chain, run_sample, scaffold_and_build};

/// One build for every test of this file (about 10 s of componentize-py).
fn shout() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        require("componentize-py", "--version");
        scaffold_and_build("python", "shout", |root| {
            let app = root.join("app.py");
            let source = std::fs::read_to_string(&app).expect("app.py");
            // Three ways a processor can go wrong, before the scaffold's own checks.
            let poison = r#"        if record["text"] == "boom":
            raise ValueError("boom is not a word")
        if record["text"] == "hog":
            hog = [bytearray(1 << 20) for _ in range(512)]
        if record["text"] == "loop":
            while True:
                pass
        if not record["text"]:"#;
            let edited = source.replacen("        if not record[\"text\"]:", poison, 1);
            assert_ne!(edited, source, "the scaffold's process() changed shape");
            std::fs::write(&app, edited).expect("write app.py");
        })
    })
}

#[test]
fn the_scaffold_builds_loads_and_runs_its_sample_pipeline() {
    let built = shout();
    run_sample(built);
    eprintln!("python: first load {:.1} s", built.cold_load_s);
}

#[test]
fn a_python_processor_runs_between_rust_processors_and_its_failures_stay_contained() {
    let (outputs, dead) = run_chain(shout(), 64);
    check_chain(
        "shout",
        &outputs,
        &dead,
        "ValueError: boom is not a word (app.py line",
        64,
    );
}

#[test]
fn the_sdk_is_versioned_with_the_wit_package() {
    let version = sdk_common::wit_version();
    let sdk = weft_tests::workspace().join("guest-sdk/python");
    let pyproject = std::fs::read_to_string(sdk.join("pyproject.toml")).expect("pyproject");
    assert!(
        pyproject.contains(&format!("version = \"{version}\"")),
        "pyproject.toml's version is not {version}"
    );
    let init = std::fs::read_to_string(sdk.join("weft_guest/__init__.py")).expect("__init__");
    assert!(init.contains(&format!("__version__ = \"{version}\"")));
    assert!(init.contains(&format!("WIT_PACKAGE = \"weft:processor@{version}\"")));
}

#[test]
fn the_sdks_own_unit_tests_pass() {
    // The codec against fastavro where installed, resolution, garbage, depth; the Runner.
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(weft_tests::workspace().join("guest-sdk/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        sdk_common::text(&out.stdout),
        sdk_common::text(&out.stderr)
    );
}

#[test]
fn plugin_warm_compiles_ahead_so_the_first_run_does_not() {
    let built = shout();
    let cache = tempfile::tempdir().expect("temp dir");
    let component = built.component.display().to_string();
    let warm = weft_tests::weft_command()
        .env("WEFT_CACHE_DIR", cache.path())
        .args(["plugin", "warm", &component])
        .output()
        .expect("weft runs");
    let (stdout, stderr) = (
        sdk_common::text(&warm.stdout),
        sdk_common::text(&warm.stderr),
    );
    assert!(warm.status.success(), "{stderr}");
    assert!(stdout.starts_with("warm shout@0.1.0 ("), "{stdout}");
    assert!(
        stderr.contains("compiling shout.wasm ("),
        "a cold load says it is compiling: {stderr}"
    );
    let validate = weft_tests::weft_command()
        .env("WEFT_CACHE_DIR", cache.path())
        .args(["validate", "pipeline.toml"])
        .current_dir(&built.root)
        .output()
        .expect("weft runs");
    let stderr = sdk_common::text(&validate.stderr);
    assert!(validate.status.success(), "{stderr}");
    assert!(
        !stderr.contains("compiling"),
        "the warmed component is not compiled again: {stderr}"
    );
}
