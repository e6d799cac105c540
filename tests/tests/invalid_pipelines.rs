//! Every file in tests/invalid-pipelines/ fails with exactly the error beside it.

use std::path::Path;

use weft_host::config;
use weft_host::pipeline::{LocalOnly, Pipeline};
use weft_tests::{plugin, runtime, workspace};

/// The error a user sees for a pipeline file, as `weft validate` would report it.
fn error_of(path: &Path) -> String {
    let config = match config::load_file(path) {
        Ok(config) => config,
        Err(errors) => return errors.to_string(),
    };
    match Pipeline::build(config, &runtime(), &LocalOnly) {
        Ok(_) => panic!(
            "{} is valid, but it is in the folder of invalid pipelines",
            path.display()
        ),
        Err(err) => err.to_string(),
    }
}

#[test]
fn each_invalid_pipeline_reports_its_exact_error() {
    // The files use the real plugins; fail (not skip) when they are not built.
    for name in ["filter", "project", "mask", "enrich"] {
        plugin(name);
    }
    let dir = workspace().join("tests/invalid-pipelines");
    let bless = std::env::var_os("WEFT_BLESS").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("folder of invalid pipelines")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let actual = error_of(&path).replace(&dir.display().to_string(), "{dir}");
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).expect("write expected");
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", path.display()));
        if expected.trim_end() != actual.trim_end() {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                expected.trim_end(),
                actual
            ));
        }
        checked += 1;
    }
    assert!(
        checked >= 8,
        "only {checked} invalid pipelines found in {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
