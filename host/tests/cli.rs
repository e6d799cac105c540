//! The `weft` binary as a user runs it: exit codes, what it prints, what it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weft_test_components::{plugin, plugin_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn weft(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(dir)
        .env(
            "WEFT_CACHE_DIR",
            std::env::temp_dir().join("weft-test-cache"),
        )
        .output()
        .expect("weft runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_every_command() {
    let out = weft(&["--help"], &workspace());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["run", "validate", "inspect", "new"] {
        assert!(help.contains(command), "--help lacks {command}: {help}");
    }
}

#[test]
fn the_demo_runs_and_prints_its_summary() {
    for name in ["filter", "enrich", "mask", "project"] {
        plugin(name);
    }
    let work = tempfile::tempdir().expect("temp dir");
    // The demo pipeline, copied so its outputs land in a temp dir.
    let demo = workspace().join("demo");
    let pipeline = std::fs::read_to_string(demo.join("pipeline.toml"))
        .expect("demo pipeline")
        .replace(
            "\"titles.jsonl\"",
            &format!("{:?}", demo.join("titles.jsonl").display().to_string()),
        )
        .replace(
            "\"../target/wasm32-wasip2/plugin/",
            &format!("\"{}/", plugin_dir().display()),
        )
        .replace("\"../", &format!("\"{}/", workspace().display()));
    std::fs::write(work.path().join("pipeline.toml"), pipeline).expect("write pipeline");

    let out = weft(&["validate", "pipeline.toml"], work.path());
    assert!(
        out.status.success(),
        "validate failed: {}",
        text(&out.stderr)
    );
    let validated = text(&out.stdout);
    assert!(validated.contains("pipeline.toml: ok"), "{validated}");
    assert!(
        validated.contains("→ enrich@0.1.0  emits weft.demo.TitleEnriched"),
        "{validated}"
    );

    let out = weft(&["run", "--quiet", "pipeline.toml"], work.path());
    let summary = text(&out.stderr);
    assert!(out.status.success(), "run failed: {summary}");
    assert!(summary.contains("200 events in"), "{summary}");
    assert!(
        summary.contains("3 dead letters (1 undecodable at the source)"),
        "{summary}"
    );
    let written =
        std::fs::read_to_string(work.path().join("out/titles.jsonl")).expect("sink output");
    let dead =
        std::fs::read_to_string(work.path().join("out/dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dead.lines().count(), 3, "{dead}");
    let first: serde_json::Value =
        serde_json::from_str(written.lines().next().expect("some output")).expect("json");
    assert!(
        first.get("genres").is_none(),
        "project dropped genres: {first}"
    );
    assert_eq!(
        first["owner"]["email"].as_str().map(str::len),
        Some(64),
        "mask hashed the e-mail: {first}"
    );
}

#[test]
fn validate_names_the_incompatible_link_and_field() {
    plugin("project");
    plugin("enrich");
    let out = weft(
        &["validate", "tests/invalid-pipelines/incompatible-link.toml"],
        &workspace(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("link project@0.1.0 (#1) → enrich@0.1.0 (#2)"),
        "{err}"
    );
    assert!(err.contains("year"), "{err}");
}

#[test]
fn inspect_prints_the_manifest() {
    let filter = plugin("filter");
    let out = weft(
        &["inspect", "--json", filter.to_str().expect("utf-8 path")],
        &workspace(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json manifest");
    assert_eq!(manifest["name"], "filter");
    assert_eq!(manifest["params"][0]["name"], "condition");
    assert_eq!(manifest["params"][0]["required"], true);
    assert_eq!(manifest["sha256"].as_str().map(str::len), Some(64));

    let out = weft(&["inspect", "Cargo.toml"], &workspace());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a WebAssembly component"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn new_scaffolds_a_processor_that_builds_and_loads() {
    let work = tempfile::tempdir().expect("temp dir");
    let out = weft(&["new", "title-case"], work.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = work.path().join("title-case");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "schemas/input.avsc",
        "schemas/output.avsc",
    ] {
        assert!(root.join(file).is_file(), "{file} missing");
    }
    let again = weft(&["new", "title-case"], work.path());
    assert_eq!(again.status.code(), Some(1), "refuses to overwrite");

    // Build it for real, sharing compiled dependencies across runs of this test.
    let build_dir = target_dir().join("scaffold-test");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &build_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the scaffold does not build");
    let component = build_dir.join("wasm32-wasip2/release/title_case.wasm");
    let out = weft(
        &["inspect", "--json", component.to_str().expect("utf-8 path")],
        work.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json manifest");
    assert_eq!(manifest["name"], "title-case");
}

#[test]
fn stdin_to_stdout_with_a_filter() {
    let filter = plugin("filter");
    let work = tempfile::tempdir().expect("temp dir");
    let schema = workspace().join("plugins/enrich/schemas/title.avsc");
    std::fs::write(
        work.path().join("pipeline.toml"),
        format!(
            "[[source]]\nkind = \"stdin\"\nschema = {schema:?}\n\n[[processor]]\nplugin = {filter:?}\nparams = {{ condition = \"title starts_with 'Keep'\" }}\n\n[sink]\nkind = \"stdout\"\n",
            schema = schema.display().to_string(),
            filter = filter.display().to_string(),
        ),
    )
    .expect("pipeline");
    let line = |id: u32, title: &str| {
        format!(
            "{{\"id\":{id},\"title\":\"{title}\",\"kind\":\"book\",\"year\":2000,\"rating\":null,\"genres\":[],\"owner\":{{\"name\":\"A\",\"email\":\"e\"}}}}\n"
        )
    };
    let input = line(1, "Keep me") + &line(2, "Drop me") + &line(3, "Keep too");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["run", "--quiet", "pipeline.toml"])
        .current_dir(work.path())
        .env(
            "WEFT_CACHE_DIR",
            std::env::temp_dir().join("weft-test-cache"),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weft runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("weft exits");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<i64> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    assert_eq!(ids, vec![1, 3]);
}
