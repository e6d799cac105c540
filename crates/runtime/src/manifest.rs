//! Caps on what a processor's manifest may declare, checked when the component is loaded (by
//! `weft` and by the registry's upload sandbox alike).
//!
//! The manifest travels into every listing, `weft inspect`, pipeline error and registry
//! response, so each field is bounded: a 50 MB description would otherwise be stored and
//! served on every `GET /v1/plugins`. The caps are far above what a real processor declares.
//!
//! The WIT `manifest` record is converted at the boundary into weft-registry-api's
//! [`PluginManifest`], the one type of a plugin's metadata that the host, the registry and
//! its clients share; the caps are checked on that.

use weft_registry_api::{ParamInfo, PluginManifest};

use super::bindings;

/// `name`: `[a-z][a-z0-9-]*`, at most this many characters (it names files and URLs).
pub const NAME_MAX: usize = 64;
/// `version`: semver, at most this many bytes.
pub const VERSION_MAX: usize = 64;
/// `description`: a paragraph, in bytes.
pub const DESCRIPTION_MAX: usize = 4 << 10;
/// Each of `input-schema` and `output-schema` (JSON), in bytes; also the schema `configure`
/// may return. Schemas of thousands of fields fit.
pub const SCHEMA_MAX: usize = 256 << 10;
/// Number of parameters.
pub const PARAMS_MAX: usize = 64;
/// A parameter's name: `[a-z_][a-z0-9_-]*`, at most this many characters.
pub const PARAM_NAME_MAX: usize = 64;
/// A parameter's description, in bytes.
pub const PARAM_DESCRIPTION_MAX: usize = 1 << 10;
/// A parameter's default value, in bytes.
pub const PARAM_DEFAULT_MAX: usize = 4 << 10;

/// The manifest a component's `describe()` returned, as weft's own type.
pub(crate) fn from_wit(m: bindings::Manifest) -> PluginManifest {
    PluginManifest {
        name: m.name,
        version: m.version,
        description: m.description,
        input_schema: m.input_schema,
        output_schema: m.output_schema,
        params: m
            .params
            .into_iter()
            .map(|p| ParamInfo {
                name: p.name,
                description: p.description,
                required: p.required,
                default: p.default,
            })
            .collect(),
    }
}

/// Checks what the rest of weft relies on: every field within its cap, a usable name, a
/// semver version, parseable schemas, distinct parameters. The error names the field and
/// the rule, and quotes at most a short prefix of what the plugin sent.
pub(crate) fn validate_manifest(m: &PluginManifest) -> Result<(), String> {
    if !is_name(&m.name, false, NAME_MAX) {
        return Err(format!(
            "name {} must match [a-z][a-z0-9-]* (at most {NAME_MAX} characters)",
            quote(&m.name)
        ));
    }
    cap("version", &m.version, VERSION_MAX)?;
    semver::Version::parse(&m.version)
        .map_err(|e| format!("version {} is not semver: {e}", quote(&m.version)))?;
    cap("description", &m.description, DESCRIPTION_MAX)?;
    for (which, schema) in [("input", &m.input_schema), ("output", &m.output_schema)] {
        if let Some(json) = schema {
            cap(&format!("{which}-schema"), json, SCHEMA_MAX)?;
            weft_schema::parse_schema(json)
                .map_err(|e| format!("{which} schema is not a valid Avro schema: {e}"))?;
        }
    }
    if m.params.len() > PARAMS_MAX {
        return Err(format!(
            "params: {} parameters declared; the cap is {PARAMS_MAX}",
            m.params.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &m.params {
        if !is_name(&p.name, true, PARAM_NAME_MAX) {
            return Err(format!(
                "parameter name {} must match [a-z_][a-z0-9_-]* (at most {PARAM_NAME_MAX} characters)",
                quote(&p.name)
            ));
        }
        if !seen.insert(p.name.as_str()) {
            return Err(format!("parameter {:?} declared twice", p.name));
        }
        cap(
            &format!("parameter {:?} description", p.name),
            &p.description,
            PARAM_DESCRIPTION_MAX,
        )?;
        if let Some(default) = &p.default {
            cap(
                &format!("parameter {:?} default", p.name),
                default,
                PARAM_DEFAULT_MAX,
            )?;
        }
    }
    Ok(())
}

/// `text` within `max` bytes, or an error naming the field, its size and the cap.
pub(crate) fn cap(field: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "{field} is {} bytes; the cap is {max} bytes",
            text.len()
        ));
    }
    Ok(())
}

/// `[a-z][a-z0-9-]*` (with `_` allowed anywhere when `underscore`), at most `max` bytes.
fn is_name(text: &str, underscore: bool, max: usize) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || (underscore && c == '_');
    text.len() <= max
        && text.chars().next().is_some_and(allowed)
        && text
            .chars()
            .all(|c| allowed(c) || c.is_ascii_digit() || c == '-')
}

/// A debug-quoted prefix of `text`, so an error never repeats megabytes a plugin sent.
fn quote(text: &str) -> String {
    const SHOWN: usize = 80;
    if text.len() <= SHOWN {
        return format!("{text:?}");
    }
    let end = (0..=SHOWN)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{:?}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn manifest() -> PluginManifest {
        PluginManifest {
            name: "shout".into(),
            version: "1.2.0".into(),
            description: "Greets loudly.".into(),
            input_schema: Some(r#"{"type":"record","name":"G","fields":[]}"#.into()),
            output_schema: None,
            params: vec![ParamInfo {
                name: "suffix".into(),
                description: "Appended.".into(),
                required: false,
                default: Some("!".into()),
            }],
        }
    }

    fn param(name: &str) -> ParamInfo {
        ParamInfo {
            name: name.into(),
            description: String::new(),
            required: false,
            default: None,
        }
    }

    #[test]
    fn a_real_manifest_passes() {
        assert_eq!(validate_manifest(&manifest()), Ok(()));
    }

    #[test]
    fn each_field_past_its_cap_is_named_with_the_cap() {
        type Spoil = Box<dyn Fn(&mut PluginManifest)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|m| m.description = "x".repeat(50 << 20)),
                "description is 52428800 bytes; the cap is 4096 bytes",
            ),
            (
                Box::new(|m| m.name = "a".repeat(65)),
                "must match [a-z][a-z0-9-]* (at most 64 characters)",
            ),
            (Box::new(|m| m.name = "Shout".into()), "name \"Shout\""),
            (
                Box::new(|m| m.name = "shout\nERROR".into()),
                "name \"shout\\nERROR\"",
            ),
            (
                Box::new(|m| m.version = format!("1.0.0-{}", "a".repeat(60))),
                "version is 66 bytes; the cap is 64 bytes",
            ),
            (
                Box::new(|m| m.output_schema = Some(" ".repeat(SCHEMA_MAX + 1))),
                "output-schema is 262145 bytes; the cap is 262144 bytes",
            ),
            (
                Box::new(|m| m.params = (0..65).map(|n| param(&format!("p{n}"))).collect()),
                "params: 65 parameters declared; the cap is 64",
            ),
            (
                Box::new(|m| m.params[0].description = "d".repeat(1025)),
                "parameter \"suffix\" description is 1025 bytes; the cap is 1024 bytes",
            ),
            (
                Box::new(|m| m.params[0].default = Some("d".repeat(4097))),
                "parameter \"suffix\" default is 4097 bytes; the cap is 4096 bytes",
            ),
            (
                Box::new(|m| m.params[0].name = "a b".into()),
                "parameter name \"a b\" must match",
            ),
            (
                Box::new(|m| m.params.push(param("suffix"))),
                "parameter \"suffix\" declared twice",
            ),
        ];
        for (spoil, expected) in cases {
            let mut m = manifest();
            spoil(&mut m);
            let err = validate_manifest(&m).expect_err(expected);
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
            assert!(
                err.len() < 300,
                "the error quotes too much: {} bytes",
                err.len()
            );
        }
    }

    #[test]
    fn fields_at_their_cap_pass() {
        let mut m = manifest();
        m.name = "a".repeat(NAME_MAX);
        m.description = "d".repeat(DESCRIPTION_MAX);
        m.params = (0..PARAMS_MAX)
            .map(|n| ParamInfo {
                name: format!("p_{n}"),
                description: "d".repeat(PARAM_DESCRIPTION_MAX),
                required: false,
                default: Some("v".repeat(PARAM_DEFAULT_MAX)),
            })
            .collect();
        assert_eq!(validate_manifest(&m), Ok(()));
    }

    proptest! {
        #[test]
        fn any_accepted_manifest_is_within_every_cap(
            name in "\\PC{0,80}|[a-z][a-z0-9-]{0,70}",
            version in "\\PC{0,70}|[0-9]\\.[0-9]\\.[0-9](-[a-z0-9]{0,70})?",
            description in "\\PC{0,20}",
            extra in 0usize..8000,
            params in prop::collection::vec("[a-z_][a-z0-9_-]{0,70}|\\PC{0,5}", 0..70),
        ) {
            let mut m = manifest();
            m.name = name;
            m.version = version;
            m.description = description + &"d".repeat(extra);
            m.params = params.iter().map(|n| param(n)).collect();
            if validate_manifest(&m).is_ok() {
                prop_assert!(m.name.len() <= NAME_MAX && m.version.len() <= VERSION_MAX);
                prop_assert!(m.description.len() <= DESCRIPTION_MAX);
                prop_assert!(m.params.len() <= PARAMS_MAX);
                prop_assert!(m.params.iter().all(|p| p.name.len() <= PARAM_NAME_MAX));
                prop_assert!(!m.name.chars().any(char::is_control));
            }
        }
    }
}
