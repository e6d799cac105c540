//! `weft plugin push|list|show`: the registry's catalogue from the command line.

use std::path::Path;

use anyhow::Context;
use weft_host::registry::client::{Client, Pushed};
use weft_runtime::Runtime;

pub fn push(client: &Client, runtime: &Runtime, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // Check locally first: a clear error here beats a 422 from the registry.
    let plugin = runtime.load_named(&bytes, &file.display().to_string())?;
    match client
        .push(bytes)
        .with_context(|| format!("pushing {}", plugin.id()))?
    {
        Pushed::Created(meta) => println!(
            "pushed {}@{} (sha256 {})",
            meta.manifest.name, meta.manifest.version, meta.sha256
        ),
        Pushed::Unchanged(meta) => println!(
            "{}@{} is already in the registry with these exact bytes (sha256 {})",
            meta.manifest.name, meta.manifest.version, meta.sha256
        ),
    }
    Ok(())
}

pub fn list(client: &Client) -> anyhow::Result<()> {
    let plugins = client.list()?;
    if plugins.is_empty() {
        println!("no plugins in the registry at {}", client.base_url());
    }
    for p in plugins {
        println!(
            "{:<20} {:<10} {}  [{}]",
            p.name,
            p.latest.as_deref().unwrap_or("(yanked)"),
            p.description,
            p.versions.join(", ")
        );
    }
    Ok(())
}

pub fn show(client: &Client, reference: &str) -> anyhow::Result<()> {
    let (name, version) = match reference.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (reference, None),
    };
    for meta in client.show(name, version)? {
        println!(
            "{}@{}{} — {}",
            meta.manifest.name,
            meta.manifest.version,
            if meta.yanked { " (yanked)" } else { "" },
            meta.manifest.description
        );
        println!("  sha256    {}", meta.sha256);
        println!(
            "  size      {} bytes, uploaded {}",
            meta.size, meta.uploaded_at
        );
        for p in &meta.manifest.params {
            println!(
                "  param     {} — {}{}",
                p.name,
                p.description,
                if p.required { " (required)" } else { "" }
            );
        }
        println!(
            "  input     {}",
            meta.manifest
                .input_schema
                .as_deref()
                .unwrap_or("any record")
        );
        println!(
            "  output    {}",
            meta.manifest
                .output_schema
                .as_deref()
                .unwrap_or("derived in configure")
        );
    }
    Ok(())
}
