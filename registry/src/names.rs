//! Name rules for everything that appears in a URL or a storage key: no path tricks, no
//! control characters, bounded length.

use crate::error::{ApiError, ApiResult};

/// Plugin names, as the WIT contract says: `[a-z][a-z0-9-]*`, at most 64 characters.
pub fn plugin_name(name: &str) -> ApiResult<()> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidName(format!(
            "plugin name `{}` must match [a-z][a-z0-9-]* (at most 64 characters)",
            printable(name)
        )))
    }
}

/// Pipeline names: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 128 characters.
pub fn pipeline_name(name: &str) -> ApiResult<()> {
    if simple(name, 128) {
        Ok(())
    } else {
        Err(ApiError::InvalidName(format!(
            "pipeline name `{}` must match [A-Za-z0-9][A-Za-z0-9._-]* (at most 128 characters)",
            printable(name)
        )))
    }
}

/// Cluster names (`[cluster] name` of a daemon): the pipeline name rule.
pub fn cluster_name(name: &str) -> ApiResult<()> {
    if simple(name, 128) {
        Ok(())
    } else {
        Err(ApiError::InvalidName(format!(
            "cluster name `{}` must match [A-Za-z0-9][A-Za-z0-9._-]* (at most 128 characters)",
            printable(name)
        )))
    }
}

/// Kafka topic names: `[A-Za-z0-9._-]`, at most 249 characters, not `.` or `..`.
pub fn topic_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidName(format!(
            "topic name `{}` must match [A-Za-z0-9._-]+ (at most 249 characters)",
            printable(name)
        )))
    }
}

/// Subjects are free-form in Confluent's registry (`orders-value`, `com.acme.Order`), so only
/// what cannot be meant is refused: empty, over 255 bytes, control characters, slashes,
/// `.`/`..`, surrounding spaces.
pub fn subject(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.trim() == name
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidSubject(printable(name)))
    }
}

/// A semantic version; returned in its normal form.
pub fn version(text: &str) -> ApiResult<semver::Version> {
    semver::Version::parse(text.trim()).map_err(|e| {
        ApiError::InvalidName(format!(
            "version `{}` is not a semantic version: {e}",
            printable(text)
        ))
    })
}

fn simple(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    name.len() <= max
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Echoes user input in messages without control characters and at bounded length.
fn printable(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_follow_the_contract() {
        assert!(plugin_name("mask").is_ok());
        assert!(plugin_name("geo-enrich2").is_ok());
        for bad in [
            "",
            "Mask",
            "1mask",
            "../etc",
            "mask/x",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(plugin_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_refuse_path_tricks_and_control_characters() {
        assert!(subject("orders-value").is_ok());
        assert!(subject("com.acme.Order").is_ok());
        for bad in ["", "..", "a/b", "a\\b", "a\0b", " a", "a\n"] {
            assert!(subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_and_pipelines() {
        assert!(topic_name("orders.v1_x-y").is_ok());
        assert!(topic_name("..").is_err());
        assert!(topic_name("a/b").is_err());
        assert!(pipeline_name("clean-orders").is_ok());
        assert!(pipeline_name("-x").is_err());
    }
}
