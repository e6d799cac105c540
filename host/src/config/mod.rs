//! Pipeline files: typed TOML with every error reported at once, with the file and the key,
//! and the settings a run takes from flags, environment and files, settled once
//! ([`Settings::resolve`], [`Layers`]).
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

mod issue;
mod kafka;
mod load;
mod settings;
mod types;
mod value;

pub use issue::{ConfigErrors, ConfigIssue, section};
pub use kafka::{
    KafkaDeadLetterConfig, KafkaSinkConfig, KafkaSourceConfig, StartPosition, WireFormat,
};
pub use load::{is_local_plugin, load_file, parse_plugin_ref, parse_str};
pub use settings::{
    BROKERS_ENV, CACHE_DIR_ENV, Layers, REGISTRY_ENV, REGISTRY_TOKEN_ENV, RegistryAccess, Settings,
    process_env,
};
pub use types::*;
pub use value::ParamValue;

#[cfg(test)]
mod tests;
