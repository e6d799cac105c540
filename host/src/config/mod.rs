//! Pipeline files: typed TOML with every error reported at once, with the file and the key.
//!
//! ```toml
//! [pipeline]
//! name = "titles"
//!
//! [[source]]
//! kind = "jsonl"
//! path = "data/titles.jsonl"
//! schema = "schemas/title.avsc"
//!
//! [[processor]]
//! plugin = "plugins/filter.wasm"     # a local component, or "filter@^0.1" from the registry
//! params = { condition = "year >= 2000" }
//!
//! [sink]
//! kind = "jsonl"
//! path = "out/titles.jsonl"
//!
//! [dead_letter]
//! kind = "jsonl"
//! path = "out/dead.jsonl"
//! ```

mod kafka;
mod load;
mod types;

pub use kafka::{BROKERS_ENV, REGISTRY_ENV};
pub use load::{
    ConfigErrors, ConfigIssue, is_local_plugin, load_file, parse_plugin_ref, parse_str,
};
pub use types::*;
