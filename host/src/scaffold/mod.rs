//! `weft new`: a processor project that builds as-is with one command, in Rust, Python or
//! JavaScript, from the templates in this folder (one subfolder per language's own files).

mod langs;

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The language of a new processor: `rust`, `python` or `js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A crate over the Rust guest SDK (`guest-sdk/`), built with cargo.
    Rust,
    /// A module over the Python SDK (`guest-sdk/python/`), built with componentize-py.
    Python,
    /// A module over the JavaScript SDK (`guest-sdk/js/`), built with componentize-js.
    Js,
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!("unknown language {other:?}: rust, python or js")),
        }
    }
}

/// What `create` wrote.
#[derive(Debug)]
pub struct Scaffold {
    /// The new project's folder.
    pub root: PathBuf,
    /// The one shell command that builds the component, run from anywhere.
    pub build: String,
    /// Where that command writes the component.
    pub component: PathBuf,
}

/// The contract every processor is built against; Python and JS projects get a copy in
/// `wit/` (componentize-py and componentize-js read the WIT from a folder).
pub const PROCESSOR_WIT: &str = include_str!("../../../wit/processor.wit");

/// Creates `dir/name/` for a processor in `lang`. `sdk` is the `guest-sdk/` folder of a weft
/// checkout (the Python and JS SDKs are its `python/` and `js/`). Refuses to overwrite an
/// existing folder.
pub fn create(name: &str, dir: &Path, sdk: &Path, lang: Lang) -> Result<Scaffold> {
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
    // Canonical, so the printed command reads `/src/weft/guest-sdk`, not `host/../guest-sdk`.
    let sdk = sdk
        .canonicalize()
        .or_else(|_| std::path::absolute(sdk))
        .map_err(|e| Error::io(sdk, e))?;
    let root = std::path::absolute(&root).map_err(|e| Error::io(&root, e))?;
    let names = Names::new(name);
    let project = langs::project(lang, &names, &sdk, &root);
    for (relative, content) in &project.files {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
    }
    Ok(Scaffold {
        root,
        build: project.build,
        component: project.component,
    })
}

/// A processor's name as each language spells it.
struct Names {
    /// `dedupe-titles`: the manifest's name and the folder's.
    name: String,
    /// `dedupe_titles`: crate, module and Avro namespace.
    module: String,
    /// `DedupeTitles`: the processor's type.
    type_name: String,
}

impl Names {
    fn new(name: &str) -> Self {
        let type_name = name
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
        Self {
            name: name.to_owned(),
            module: name.replace('-', "_"),
            type_name,
        }
    }

    /// A template with `{{name}}`, `{{crate_name}}`/`{{module_name}}` and `{{type_name}}`
    /// filled in.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{crate_name}}", &self.module)
            .replace("{{module_name}}", &self.module)
            .replace("{{type_name}}", &self.type_name)
    }
}
