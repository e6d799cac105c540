//! A plugin's metadata: what it declares about itself, and what the registry adds when it
//! stores a version.

use serde::{Deserialize, Serialize};

/// A parameter a plugin accepts, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamInfo {
    pub name: String,
    pub description: String,
    pub required: bool,
    /// Default value, as the pipeline file would give it.
    pub default: Option<String>,
}

/// What a plugin declares about itself through `describe()`: read by the host at load time
/// and by the registry at upload, so the declaration travels inside the artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginManifest {
    pub name: String,
    /// Semantic version.
    pub version: String,
    pub description: String,
    /// Avro schema (JSON) the plugin reads; absent for schema-agnostic plugins.
    pub input_schema: Option<String>,
    /// Avro schema (JSON) the plugin writes; absent when derived from the input at configure time.
    pub output_schema: Option<String>,
    pub params: Vec<ParamInfo>,
}

impl PluginManifest {
    /// `name@version`, how a plugin is named in errors, summaries and dead letters.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// One version of a plugin: its manifest and how its bytes are stored. On the wire the
/// manifest's fields sit beside the storage fields, in one flat object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginVersion {
    #[serde(flatten)]
    pub manifest: PluginManifest,
    /// Hex sha256 of the component bytes; the download's ETag.
    pub sha256: String,
    pub size: u64,
    /// RFC 3339 time of the upload.
    pub uploaded_at: String,
    /// Yanked versions stay downloadable by exact version but are skipped by resolution.
    pub yanked: bool,
    /// What happened to this version since its upload (a daemon's canary rolled it back),
    /// oldest first. Absent in records stored before annotations existed.
    #[serde(default)]
    pub annotations: Vec<Annotation>,
}

/// A note on a plugin version: `POST /v1/plugins/{name}/{version}/annotations`, e.g. a
/// daemon's canary rolling it back for one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Annotation {
    /// What happened: `rolled-back` (a daemon's canary), or any short word of the author's.
    pub kind: String,
    /// The pipeline it happened in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Why, in words (e.g. "trapped on 6 of its first 200 events: ...").
    #[serde(default)]
    pub reason: String,
    /// RFC 3339 time the registry stored it; set by the registry, ignored in a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl Annotation {
    /// The kind a daemon's canary writes when it rolls a version back.
    pub const ROLLED_BACK: &'static str = "rolled-back";
}

/// A plugin in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginSummary {
    pub name: String,
    pub description: String,
    /// Newest version that is not yanked, if any.
    pub latest: Option<String>,
    pub versions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the registry has always answered for a plugin version (and stored in sled):
    /// one flat object, the manifest's fields first.
    const WIRE: &str = r#"{"name":"mask","version":"1.2.0","description":"Masks fields.","input_schema":"\"string\"","output_schema":null,"params":[{"name":"fields","description":"Which.","required":true,"default":null}],"sha256":"ab12","size":42,"uploaded_at":"2026-01-01T00:00:00Z","yanked":false,"annotations":[]}"#;

    #[test]
    fn a_plugin_version_is_one_flat_object_on_the_wire() {
        let version = PluginVersion {
            manifest: PluginManifest {
                name: "mask".into(),
                version: "1.2.0".into(),
                description: "Masks fields.".into(),
                input_schema: Some("\"string\"".into()),
                output_schema: None,
                params: vec![ParamInfo {
                    name: "fields".into(),
                    description: "Which.".into(),
                    required: true,
                    default: None,
                }],
            },
            sha256: "ab12".into(),
            size: 42,
            uploaded_at: "2026-01-01T00:00:00Z".into(),
            yanked: false,
            annotations: Vec::new(),
        };
        assert_eq!(serde_json::to_string(&version).expect("serialises"), WIRE);
        let read: PluginVersion = serde_json::from_str(WIRE).expect("deserialises");
        assert_eq!(read, version);
        assert_eq!(read.manifest.id(), "mask@1.2.0");
        // A record stored before annotations existed still reads.
        let old = WIRE.replace(r#","annotations":[]"#, "");
        let read: PluginVersion = serde_json::from_str(&old).expect("old record");
        assert_eq!(read, version);
    }
}
