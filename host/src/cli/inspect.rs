//! `weft inspect`: a component's manifest, for people (table) or tools (JSON).

use std::path::Path;

use weft_runtime::Runtime;

pub fn inspect(runtime: &Runtime, path: &Path, json: bool) -> anyhow::Result<()> {
    let plugin = super::warm::with_progress(&super::warm::describe_file(path), || {
        runtime.load_file(path)
    })?;
    let m = plugin.manifest();
    let schema_json = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    };
    if json {
        let value = serde_json::json!({
            "name": m.name,
            "version": m.version,
            "description": m.description,
            "sha256": plugin.sha256(),
            "size": plugin.size(),
            "contract": plugin.contract().as_str(),
            "params": m.params.iter().map(|p| serde_json::json!({
                "name": p.name, "description": p.description, "required": p.required, "default": p.default,
            })).collect::<Vec<_>>(),
            "input_schema": schema_json(&m.input_schema),
            "output_schema": schema_json(&m.output_schema),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{}@{} — {}", m.name, m.version, m.description);
    println!("sha256  {}", plugin.sha256());
    println!("size    {} bytes", plugin.size());
    // The weft:processor package version the component exports (0.1.0 components are taken to
    // read every field of their input).
    println!("wit     weft:processor@{}", plugin.contract());
    println!("params");
    if m.params.is_empty() {
        println!("  (none)");
    }
    for p in &m.params {
        let flag = match (&p.default, p.required) {
            (Some(d), _) => format!("default {d:?}"),
            (None, true) => "required".into(),
            (None, false) => "optional".into(),
        };
        println!("  {:<16} {} ({flag})", p.name, p.description);
    }
    for (label, schema) in [
        ("input schema", &m.input_schema),
        ("output schema", &m.output_schema),
    ] {
        match schema_json(schema) {
            Some(s) => println!("{label}\n{}", serde_json::to_string_pretty(&s)?),
            None => println!("{label}: any record (derived in configure)"),
        }
    }
    Ok(())
}
