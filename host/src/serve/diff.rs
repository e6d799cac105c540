//! How a new version of a pipeline is applied to the running one, from the two parsed
//! configs compared section by section (as Vector diffs its config on reload): nothing, a swap
//! of what changed at a batch boundary, or a restart. Pure: no I/O, no plugin loaded.

use crate::config::PipelineConfig;

/// How a new version is applied to a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Same parsed config.
    Unchanged,
    /// Same sources: swap what changed at a batch boundary. `chain`: processors or limits.
    Swap {
        chain: bool,
        sink: bool,
        dead_letter: bool,
    },
    /// Another source (or another depth limit, which the source applies): build anew.
    Restart,
}

/// Compares two parsed versions section by section.
pub(super) fn plan(old: &PipelineConfig, new: &PipelineConfig) -> Plan {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    if format!("{old:?}") == format!("{new:?}") {
        return Plan::Unchanged;
    }
    if !same(&old.sources, &new.sources) || old.limits.max_depth != new.limits.max_depth {
        return Plan::Restart;
    }
    Plan::Swap {
        chain: !same(&old.processors, &new.processors)
            || !same(&old.limits, &new.limits)
            || !same(&old.registry, &new.registry),
        sink: !same(&old.sink, &new.sink),
        dead_letter: !same(&old.dead_letter, &new.dead_letter),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    /// One folder, shared by these tests, with the schema their pipelines read: versions are
    /// compared by their parsed form, absolute paths included.
    fn folder() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join("weft-serve-plan-tests");
        std::fs::create_dir_all(&dir).expect("folder");
        let schema = dir.join("s.avsc");
        if !schema.exists() {
            // Through a rename, so a test running at the same time never reads half a file.
            let temp = dir.join(format!(".s.avsc.{}", std::process::id()));
            std::fs::write(
                &temp,
                r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"}]}"#,
            )
            .expect("schema");
            std::fs::rename(&temp, &schema).expect("schema in place");
        }
        // Only its existence is checked when parsing; a plan never loads it.
        std::fs::write(dir.join("f.wasm"), b"").expect("component file");
        dir
    }

    fn parse_with(count: u64, extra: &str) -> PipelineConfig {
        let dir = folder();
        let text = format!(
            "[[source]]\nkind = \"generate\"\nschema = \"s.avsc\"\ncount = {count}\n\
             [sink]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n{extra}"
        );
        crate::config::parse_str(&text, &dir.join("p.toml"), &dir).expect("valid pipeline")
    }

    fn parse(extra: &str) -> PipelineConfig {
        parse_with(10, extra)
    }

    #[test]
    fn formatting_and_comments_do_not_make_a_new_version() {
        let a = parse("");
        let b = parse("# a comment\n[limits]\nbatch_size = 1024\n");
        assert_eq!(plan(&a, &b), Plan::Unchanged);
    }

    #[test]
    fn processors_and_limits_swap_the_chain_only() {
        let a = parse("[[processor]]\nplugin = \"f.wasm\"\nparams = { condition = \"x > 1\" }\n");
        let b = parse("[[processor]]\nplugin = \"f.wasm\"\nparams = { condition = \"x > 2\" }\n");
        let expected = Plan::Swap {
            chain: true,
            sink: false,
            dead_letter: false,
        };
        assert_eq!(plan(&a, &b), expected);
        assert_eq!(plan(&a, &parse("[limits]\nbatch_size = 10\n")), expected);
    }

    #[test]
    fn a_new_sink_or_dead_letter_keeps_the_chain() {
        let a = parse("");
        let b = parse("[dead_letter]\nkind = \"jsonl\"\npath = \"dead.jsonl\"\n");
        assert_eq!(
            plan(&a, &b),
            Plan::Swap {
                chain: false,
                sink: false,
                dead_letter: true
            }
        );
        let mut c = a.clone();
        c.sink = crate::config::SinkConfig::Null;
        assert_eq!(
            plan(&a, &c),
            Plan::Swap {
                chain: false,
                sink: true,
                dead_letter: false
            }
        );
    }

    #[test]
    fn another_source_or_depth_limit_restarts() {
        let a = parse("");
        let b = parse_with(11, "");
        assert_eq!(plan(&a, &b), Plan::Restart);
        assert_eq!(
            plan(&a, &parse("[limits]\nmax_depth = 10\n")),
            Plan::Restart
        );
    }
}
