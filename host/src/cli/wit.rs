//! `weft wit`: the processor contract guests build against, served by the binary itself, so
//! a guest build depends on the weft it targets instead of a copied file.

use std::path::Path;

use anyhow::Context;

use weft_host::scaffold::PROCESSOR_WIT;

/// Prints the package, or writes it as `processor.wit` into `out` (created if missing).
pub fn run(out: Option<&Path>) -> anyhow::Result<()> {
    let Some(dir) = out else {
        print!("{PROCESSOR_WIT}");
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("processor.wit");
    std::fs::write(&path, PROCESSOR_WIT).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} (weft:processor@0.2.0, world `processor`)",
        path.display()
    );
    Ok(())
}
