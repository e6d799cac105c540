//! `weft new`: a processor crate that builds as-is, from templates in this folder.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

const CARGO_TOML: &str = include_str!("Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("lib.rs.tmpl");
const INPUT_AVSC: &str = include_str!("input.avsc.tmpl");
const OUTPUT_AVSC: &str = include_str!("output.avsc.tmpl");

/// Creates `dir/name/` with `Cargo.toml`, `src/lib.rs` and `schemas/`. `sdk` is the path of
/// weft's `guest-sdk/` the new crate depends on. Refuses to overwrite an existing folder.
pub fn create(name: &str, dir: &Path, sdk: &Path) -> Result<PathBuf> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(Error::InvalidManifest {
            origin: name.to_string(),
            reason: "a processor name must match [a-z][a-z0-9-]* (e.g. `dedupe-titles`)".into(),
        });
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(Error::io(
            &root,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists; pick another name or --dir",
            ),
        ));
    }
    let sdk = std::path::absolute(sdk).map_err(|e| Error::io(sdk, e))?;
    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{type_name}}", &type_name)
            .replace(
                "{{sdk_path}}",
                &sdk.display().to_string().replace('\\', "/"),
            )
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("schemas/input.avsc", fill(INPUT_AVSC)),
        ("schemas/output.avsc", fill(OUTPUT_AVSC)),
    ];
    for (relative, content) in files {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
    }
    Ok(root)
}
