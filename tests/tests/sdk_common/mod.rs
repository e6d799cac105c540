//! What the Python and JavaScript SDK tests share: a processor scaffolded by the real `weft
//! new --lang`, built with the one command it prints, run through the real `weft` between
//! shipped Rust processors, and the checks a user would make of what came out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weft_tests::{plugin, toml_path, weft_command};

/// A processor built from a scaffold, kept for every test of the process.
pub struct Built {
    /// Holds the project (and the component) for the test process's life.
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub component: PathBuf,
    /// Seconds `weft inspect` took on the first, cold load (compiling the component).
    pub cold_load_s: f64,
}

/// Fails, naming the set-up script, when a tool the SDK tests need is missing: CI must not
/// pass by skipping them.
pub fn require(tool: &str, version_arg: &str) {
    let found = Command::new(tool)
        .arg(version_arg)
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "{tool} is not installed (the {} SDK tests build processors with it): run scripts/setup.sh --kafka",
        if tool == "componentize-py" {
            "Python"
        } else {
            "JavaScript"
        }
    );
}

pub fn weft(args: &[&str], cwd: &Path) -> Output {
    weft_command()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("weft runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `weft new NAME --lang LANG`, then `edit` on the project, then the build command the
/// scaffold printed, then `weft inspect`.
pub fn scaffold_and_build(lang: &str, name: &str, edit: impl FnOnce(&Path)) -> Built {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = weft(
        &[
            "new",
            name,
            "--lang",
            lang,
            "--dir",
            &dir.path().display().to_string(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "weft new: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let build = stdout
        .lines()
        .find_map(|line| line.strip_prefix("build it:"))
        .unwrap_or_else(|| panic!("weft new prints no build command: {stdout}"))
        .trim()
        .to_owned();
    let root = dir.path().join(name);
    assert!(
        root.join("wit/processor.wit").is_file(),
        "the scaffold carries the WIT"
    );
    edit(&root);

    let built = Command::new("sh")
        .args(["-c", &build])
        .output()
        .expect("sh runs");
    assert!(
        built.status.success(),
        "the printed build command failed: {build}\n{}\n{}",
        text(&built.stdout),
        text(&built.stderr)
    );
    let component = root.join(format!("{name}.wasm"));
    assert!(component.is_file(), "{} was not built", component.display());

    let started = std::time::Instant::now();
    let out = weft(
        &["inspect", "--json", &component.display().to_string()],
        dir.path(),
    );
    let cold_load_s = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "weft inspect: {}", text(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json manifest");
    assert_eq!(manifest["name"], name);
    assert_eq!(manifest["version"], "0.1.0");
    eprintln!(
        "{lang}: {} built, {:.1} MB, first load {cold_load_s:.1} s",
        component.display(),
        std::fs::metadata(&component).map_or(0, |m| m.len()) as f64 / 1e6
    );
    Built {
        _dir: dir,
        root,
        component,
        cold_load_s,
    }
}

/// The scaffold's own sample pipeline, as its project writes it: `weft run pipeline.toml`.
pub fn run_sample(built: &Built) {
    let out = weft(&["run", "pipeline.toml"], &built.root);
    assert!(out.status.success(), "weft run: {}", text(&out.stderr));
    assert_eq!(
        read_jsonl(&built.root.join("out/events.jsonl")),
        vec![
            serde_json::json!({"id": 1, "text": "> hello", "length": 7}),
            serde_json::json!({"id": 3, "text": "> world", "length": 7}),
        ]
    );
    let dead = read_jsonl(&built.root.join("out/dead-letters.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "empty text");
    assert_eq!(dead[0]["value"]["id"], 2);
}

pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// The events of the chain test: the stream carries a field (`note`) the processor does not
/// declare, so its records come through schema resolution. Texts the test processors
/// react to: `boom` throws, `hog` allocates past the memory limit, `loop` never returns.
const EVENTS: &str = r#"{"id": 1, "text": "hello", "note": "n1"}
{"id": -1, "text": "filtered out by the Rust filter", "note": null}
{"id": 2, "text": "", "note": null}
{"id": 3, "text": "boom", "note": null}
{"id": 4, "text": "hog", "note": null}
{"id": 5, "text": "loop", "note": null}
{"id": 6, "text": "héllo wörld", "note": "n6"}
"#;

/// Runs filter (Rust) → the SDK processor → project (Rust) over [`EVENTS`] and returns the
/// sink's events and the dead letters. `prefix = 5.0` checks that a float parameter
/// arrives as the file wrote it.
pub fn run_chain(
    built: &Built,
    memory_mb: u32,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let work = tempfile::tempdir().expect("temp dir");
    let module = built
        .root
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name")
        .replace('-', "_");
    std::fs::write(
        work.path().join("events.avsc"),
        serde_json::json!({
            "type": "record", "name": "Input", "namespace": module,
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "text", "type": "string"},
                {"name": "note", "type": ["null", "string"], "default": null},
            ],
        })
        .to_string(),
    )
    .expect("write schema");
    std::fs::write(work.path().join("events.jsonl"), EVENTS).expect("write events");
    let pipeline = format!(
        r#"
[[source]]
kind = "jsonl"
path = "events.jsonl"
schema = "events.avsc"

[[processor]]
plugin = {filter}
params = {{ condition = "id > 0" }}

[[processor]]
plugin = {component}
params = {{ prefix = 5.0 }}

[[processor]]
plugin = {project}
params = {{ rename = "length:chars" }}

[sink]
kind = "jsonl"
path = "out.jsonl"

[dead_letter]
kind = "jsonl"
path = "dead.jsonl"

[limits]
memory_mb = {memory_mb}
deadline_ms = 1000
"#,
        filter = toml_path(&plugin("filter")),
        component = toml_path(&built.component),
        project = toml_path(&plugin("project")),
    );
    std::fs::write(work.path().join("pipeline.toml"), pipeline).expect("write pipeline");
    let out = weft(&["run", "pipeline.toml"], work.path());
    assert!(
        out.status.success(),
        "weft run: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!("{}", text(&out.stderr));
    (
        read_jsonl(&work.path().join("out.jsonl")),
        read_jsonl(&work.path().join("dead.jsonl")),
    )
}

/// What every language's chain must give: each event's output exactly, and one dead letter
/// per poison event with a reason a user can act on. `exception` is the start of the
/// language's own text for `boom`.
pub fn check_chain(
    name: &str,
    outputs: &[serde_json::Value],
    dead: &[serde_json::Value],
    exception: &str,
    memory_mb: u32,
) {
    assert_eq!(
        outputs,
        [
            serde_json::json!({"id": 1, "text": "5.0hello", "chars": 8}),
            serde_json::json!({"id": 6, "text": "5.0héllo wörld", "chars": 14}),
        ],
        "every event that passed, shouted, through project's rename"
    );
    let reason = |id: i64| -> String {
        let found: Vec<_> = dead.iter().filter(|d| d["value"]["id"] == id).collect();
        assert_eq!(found.len(), 1, "one dead letter for event {id}: {dead:#?}");
        assert_eq!(found[0]["processor"], format!("{name}@0.1.0"));
        assert_eq!(found[0]["stage"], 2);
        found[0]["reason"].as_str().expect("a reason").to_owned()
    };
    assert_eq!(dead.len(), 4, "{dead:#?}");
    assert_eq!(reason(2), "empty text");
    let boom = reason(3);
    assert!(
        boom.starts_with(&format!("trap: {exception}")),
        "the language's own exception text: {boom}"
    );
    assert_eq!(
        reason(4),
        format!("memory limit of {memory_mb} MiB per processor exceeded")
    );
    assert_eq!(reason(5), "deadline of 1000 ms per batch exceeded");
}

/// The SDK's version is the WIT package's (`weft:processor@X`).
pub fn wit_version() -> String {
    let wit = std::fs::read_to_string(weft_tests::workspace().join("wit/processor.wit"))
        .expect("read the WIT");
    wit.lines()
        .find_map(|l| l.trim().strip_prefix("package weft:processor@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("a package line")
        .to_owned()
}
