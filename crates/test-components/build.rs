//! Builds the plugin components the tests load — the shipped processors and the test-only
//! ones — for wasm32-wasip2 with the `plugin` profile, so `cargo test` works on a fresh
//! clone, and tells `plugin(name)` where they are (`WEFT_PLUGIN_DIR`).
//!
//! The nested cargo builds into the workspace's own target dir, exactly as
//! `scripts/build-plugins.sh` does (same packages, same invocations), so the script, the
//! demo and the tests share one compiled set in `<target>/wasm32-wasip2/plugin/` and CI
//! compiles the plugins once. It does not wait on the outer build: cargo locks a target
//! dir per profile directory (`debug/`, `plugin/`, `wasm32-wasip2/plugin/`), and the
//! outer build is never the `plugin` profile (checked below, as that one would deadlock).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

/// Built in one invocation, as `scripts/build-plugins.sh` does; a different set would
/// unify features differently and rebuild what the other just built.
const PLUGINS: &[&str] = &[
    "weft-plugin-filter",
    "weft-plugin-project",
    "weft-plugin-mask",
    "weft-plugin-enrich",
    "weft-test-hostile",
    "weft-test-raw",
    "weft-test-bloated",
    "weft-test-stamp-1-0",
    "weft-test-stamp-1-1",
    "weft-test-stamp-1-2",
    "weft-test-wit01",
];

/// Built on its own: it uses the SDK without its allocator, and built together with the
/// others, feature unification would turn that allocator back on.
const OWN_ALLOCATOR: &str = "weft-test-own-alloc";

fn main() {
    // Read when the script runs, not baked in when it was compiled: a build script compiled
    // in another checkout sharing this target dir must still build this checkout's plugins.
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/test-components lives two levels below the workspace root")
        .to_path_buf();
    for watched in [
        "plugins",
        "tests/plugins",
        "wit",
        "guest-sdk",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rustc-env=WEFT_PLUGIN_PACKAGES={}", PLUGINS.join(" "));
    println!("cargo:rustc-env=WEFT_OWN_ALLOCATOR_PACKAGE={OWN_ALLOCATOR}");

    match build(&workspace) {
        Ok(dir) => println!("cargo:rustc-env=WEFT_PLUGIN_DIR={}", dir.display()),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}

/// Builds every component; the folder they are in.
fn build(workspace: &Path) -> Result<PathBuf, String> {
    refuse_the_plugin_profile()?;
    check_target_installed()?;
    let mut components = cargo_build(workspace, PLUGINS)?;
    components.extend(cargo_build(workspace, &[OWN_ALLOCATOR])?);
    let dir = components
        .first()
        .and_then(|c| c.parent())
        .ok_or("cargo built no .wasm component")?
        .to_path_buf();
    if let Some(elsewhere) = components.iter().find(|c| c.parent() != Some(&dir)) {
        return Err(format!(
            "components landed in two folders: {} and {}",
            dir.display(),
            elsewhere.display()
        ));
    }
    Ok(dir)
}

/// Building the tests themselves with the `plugin` profile would make the nested cargo
/// wait forever for the lock this build holds on `<target>/plugin/`.
fn refuse_the_plugin_profile() -> Result<(), String> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<crate>-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).and_then(Path::file_name);
    if profile_dir.is_some_and(|name| name == "plugin") {
        return Err(
            "weft-test-components cannot be built with the `plugin` profile: its build script \
             builds the plugins with that profile into the same target dir"
                .into(),
        );
    }
    Ok(())
}

fn check_target_installed() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("running {}: {e}", rustc.to_string_lossy()))?;
    let libdir = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !Path::new(libdir.trim()).is_dir() {
        return Err(format!(
            "the {TARGET} target is not installed, and the tests need the plugin components \
             built for it: run `rustup target add {TARGET}` (scripts/setup.sh does)"
        ));
    }
    Ok(())
}

/// `cargo build --profile plugin --target wasm32-wasip2 -p …` in the workspace; the
/// `.wasm` files it reports.
fn cargo_build(workspace: &Path, packages: &[&str]) -> Result<Vec<PathBuf>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--profile", "plugin", "--target", TARGET])
        // Artifacts as JSON on stdout (where they landed), diagnostics as text on stderr.
        .arg("--message-format=json-render-diagnostics")
        // These are the outer build's, for the host: the plugins get what the user set,
        // exactly as scripts/build-plugins.sh would. Under `cargo clippy` the wrapper would
        // also change the plugins' fingerprints and make the next `cargo test` rebuild them.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command
        .output()
        .map_err(|e| format!("running cargo for the plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the plugin components failed (cargo build --profile plugin --target \
             {TARGET} -p {}); cargo's errors are above",
            packages.join(" -p ")
        ));
    }
    let mut components = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let files = message["filenames"].as_array().into_iter().flatten();
        components.extend(
            files
                .filter_map(serde_json::Value::as_str)
                .filter(|f| f.ends_with(".wasm"))
                .map(PathBuf::from),
        );
    }
    Ok(components)
}
