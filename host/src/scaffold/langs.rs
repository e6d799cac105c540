//! Each language's files and the one command that builds them.

use std::path::{Path, PathBuf};

use super::{Lang, Names, PROCESSOR_WIT};

const CARGO_TOML: &str = include_str!("Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("lib.rs.tmpl");
const INPUT_AVSC: &str = include_str!("input.avsc.tmpl");
const OUTPUT_AVSC: &str = include_str!("output.avsc.tmpl");
const APP_PY: &str = include_str!("python/app.py.tmpl");
const PROCESSOR_JS: &str = include_str!("js/processor.js.tmpl");
const PACKAGE_JSON: &str = include_str!("js/package.json.tmpl");
const NPMRC: &str = include_str!("js/npmrc.tmpl");
const PIPELINE_TOML: &str = include_str!("pipeline.toml.tmpl");
const EVENTS_AVSC: &str = include_str!("events.avsc.tmpl");
const EVENTS_JSONL: &str = include_str!("events.jsonl.tmpl");

/// A JavaScript processor carries SpiderMonkey: its heap outgrows the default 64 MiB of a
/// processor instance (measured: see the README's Performance), so its sample pipeline
/// raises the limit.
const JS_LIMITS: &str = "
[limits]
# A JavaScript processor runs in SpiderMonkey, whose heap needs more than the default 64 MiB.
memory_mb = 256
";

pub(super) struct Project {
    pub files: Vec<(&'static str, String)>,
    pub build: String,
    pub component: PathBuf,
}

pub(super) fn project(lang: Lang, names: &Names, sdk: &Path, root: &Path) -> Project {
    let slash = |path: &Path| path.display().to_string().replace('\\', "/");
    let cd = format!("cd {}", shell_quote(&slash(root)));
    let sample = |limits: &str| {
        [
            (
                "pipeline.toml",
                names.fill(&PIPELINE_TOML.replace("{{limits}}", limits)),
            ),
            ("events.avsc", names.fill(EVENTS_AVSC)),
            ("events.jsonl", names.fill(EVENTS_JSONL)),
            ("wit/processor.wit", PROCESSOR_WIT.to_owned()),
        ]
    };
    match lang {
        Lang::Rust => {
            let fill = |t: &str| names.fill(t).replace("{{sdk_path}}", &slash(sdk));
            let manifest = root.join("Cargo.toml");
            Project {
                files: vec![
                    ("Cargo.toml", fill(CARGO_TOML)),
                    ("src/lib.rs", fill(LIB_RS)),
                    ("schemas/input.avsc", fill(INPUT_AVSC)),
                    ("schemas/output.avsc", fill(OUTPUT_AVSC)),
                ],
                build: format!(
                    "cargo build --release --target wasm32-wasip2 --manifest-path {}",
                    shell_quote(&slash(&manifest))
                ),
                component: root
                    .join("target/wasm32-wasip2/release")
                    .join(format!("{}.wasm", names.module)),
            }
        }
        Lang::Python => {
            let build = format!(
                "{cd} && componentize-py -d wit -w processor componentize app -p . -p {} -o {}.wasm",
                shell_quote(&slash(&sdk.join("python"))),
                names.name
            );
            let mut files = vec![("app.py", names.fill(APP_PY).replace("{{build}}", &build))];
            files.extend(sample(""));
            Project {
                files,
                build,
                component: root.join(format!("{}.wasm", names.name)),
            }
        }
        Lang::Js => {
            let build = format!("{cd} && npm install --no-audit --no-fund && npm run build");
            let mut files = vec![
                (
                    "package.json",
                    names
                        .fill(PACKAGE_JSON)
                        .replace("{{sdk_path}}", &slash(&sdk.join("js"))),
                ),
                (".npmrc", NPMRC.to_owned()),
                (
                    "src/processor.js",
                    names.fill(PROCESSOR_JS).replace("{{build}}", &build),
                ),
            ];
            files.extend(sample(JS_LIMITS));
            Project {
                files,
                build,
                component: root.join(format!("{}.wasm", names.name)),
            }
        }
    }
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_spaces_or_quotes_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/tmp/shout"), "/tmp/shout");
        assert_eq!(shell_quote("/tmp/my shout"), "'/tmp/my shout'");
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
