//! `weft new`: writes a processor project and prints the one command that builds it.

use std::path::Path;
use std::process::ExitCode;

use weft_host::scaffold::{self, Lang};

/// `weft new`'s default: the guest SDKs of the weft checkout this binary was built from
/// (Rust at its root, Python in `python/`, JavaScript in `js/`).
pub const DEFAULT_SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

pub fn run(name: &str, dir: &Path, sdk: &Path, lang: Lang) -> anyhow::Result<ExitCode> {
    let created = scaffold::create(name, dir, sdk, lang)?;
    println!("created {}", created.root.display());
    println!("build it:  {}", created.build);
    println!("then:      weft inspect {}", created.component.display());
    if lang != Lang::Rust {
        println!(
            "           weft run {}",
            created.root.join("pipeline.toml").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
