//! `weft new`'s default: the guest SDK of the weft checkout this binary was built from.

pub const DEFAULT_SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");
