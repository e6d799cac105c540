//! Schema subjects with Confluent semantics: global schema ids, per-subject versions, soft
//! and permanent deletes, compatibility levels.

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use weft_host::schema::{CompatibilityLevel, Incompatibility, check_level};

use super::{Store, decode, encode, key2, split_key2};
use crate::error::{ApiError, ApiResult};

/// Key of the global compatibility level in the `configs` tree (no subject contains NUL).
pub(crate) const GLOBAL: &[u8] = b"\0global";
/// Key of the next schema id in the `meta` tree.
const NEXT_ID: &[u8] = b"next_schema_id";
/// The level of a registry nobody configured, as in Confluent's.
pub const DEFAULT_LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredSchema {
    pub schema: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub id: u32,
    pub deleted: bool,
}

/// One version of a subject.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub deleted: bool,
    pub schema: String,
}

/// A schema known by id, with the subject versions that use it.
#[derive(Debug, Clone)]
pub struct SchemaEntry {
    pub id: u32,
    pub schema: String,
}

/// Parses an Avro schema (JSON text) into the library's model; 42201 if it is not one.
pub fn parse_schema(text: &str) -> ApiResult<Schema> {
    Schema::parse_str(text).map_err(|e| ApiError::InvalidSchema(e.to_string()))
}

/// A schema's two texts: compact JSON as given (what is stored and served), and the same
/// with object keys sorted (what identifies it), so whitespace and key order do not make two
/// ids for one schema whatever serde_json's map ordering is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaText {
    pub identity: String,
    pub text: String,
}

/// Builds a schema's [`SchemaText`]; 42201 if it is not JSON.
pub fn canonical_schema(text: &str) -> ApiResult<SchemaText> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::InvalidSchema(e.to_string()))?;
    // A bare primitive name may be written `"int"` or `{"type":"int"}`; store it one way.
    let value = match &value {
        serde_json::Value::Object(map) if map.len() == 1 => match map.get("type") {
            Some(serde_json::Value::String(name)) => serde_json::Value::String(name.clone()),
            _ => value,
        },
        _ => value,
    };
    let compact = |v: &serde_json::Value| {
        serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()))
    };
    Ok(SchemaText {
        identity: compact(&sorted(value.clone()))?,
        text: compact(&value)?,
    })
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let entries: std::collections::BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::Value::Object(entries.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn version_key(subject: &str, version: u32) -> Vec<u8> {
    key2(subject, &version.to_be_bytes())
}

fn ref_key(id: u32, subject: &str, version: u32) -> Vec<u8> {
    let mut key = id.to_be_bytes().to_vec();
    key.extend_from_slice(&version_key(subject, version));
    key
}

fn digest(identity: &str) -> [u8; 32] {
    Sha256::digest(identity.as_bytes()).into()
}

/// Formats problems the way Confluent's verbose answers do, naming the version and level.
pub fn describe_problems(
    problems: &[Incompatibility],
    versions: &[SubjectVersion],
    level: CompatibilityLevel,
) -> Vec<String> {
    let mut messages: Vec<String> = problems
        .iter()
        .map(|p| {
            let old = p
                .against
                .and_then(|(index, _)| versions.get(index))
                .map(|v| format!(", oldSchemaVersion: {}", v.version))
                .unwrap_or_default();
            format!(
                "{{errorType:'{}', description:'{}', additionalInfo:'{}'{old}}}",
                p.kind.as_str(),
                p,
                p.path
            )
        })
        .collect();
    messages.push(format!("{{compatibility: '{level}'}}"));
    messages
}

impl Store {
    /// All versions of a subject, soft-deleted ones included, oldest first.
    pub fn subject_versions(&self, subject: &str) -> ApiResult<Vec<SubjectVersion>> {
        let mut out = Vec::new();
        for item in self.versions.scan_prefix(key2(subject, &[])) {
            let (key, value) = item?;
            let version = match split_key2(&key) {
                Some((_, v)) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                _ => return Err(ApiError::Store(format!("bad version key {key:?}"))),
            };
            let record: VersionRecord = decode(&value)?;
            out.push(SubjectVersion {
                subject: subject.to_string(),
                version,
                id: record.id,
                deleted: record.deleted,
                schema: self.schema_text(record.id)?,
            });
        }
        Ok(out)
    }

    /// Versions of a subject; 40401 if it has none (or only soft-deleted ones, unless asked).
    pub fn live_versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> ApiResult<Vec<SubjectVersion>> {
        let versions: Vec<SubjectVersion> = self
            .subject_versions(subject)?
            .into_iter()
            .filter(|v| include_deleted || !v.deleted)
            .collect();
        if versions.is_empty() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// Subject names, sorted; soft-deleted subjects only when asked.
    pub fn subjects(&self, include_deleted: bool, prefix: &str) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for item in self.versions.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item?;
            let Some((subject, _)) = split_key2(&key) else {
                continue;
            };
            let record: VersionRecord = decode(&value)?;
            if (include_deleted || !record.deleted)
                && out.last().map(String::as_str) != Some(subject)
            {
                out.push(subject.to_string());
            }
        }
        Ok(out)
    }

    fn schema_text(&self, id: u32) -> ApiResult<String> {
        let bytes = self
            .schemas
            .get(id.to_be_bytes())?
            .ok_or_else(|| ApiError::Store(format!("schema {id} referenced but missing")))?;
        Ok(decode::<StoredSchema>(&bytes)?.schema)
    }

    /// A schema by id, if some subject version (soft-deleted or not) still uses it.
    pub fn schema_by_id(&self, id: u32) -> ApiResult<SchemaEntry> {
        if self
            .id_refs
            .scan_prefix(id.to_be_bytes())
            .next()
            .transpose()?
            .is_none()
        {
            return Err(ApiError::SchemaIdNotFound(id));
        }
        Ok(SchemaEntry {
            id,
            schema: self.schema_text(id)?,
        })
    }

    /// Subject versions using a schema id.
    pub fn id_usages(&self, id: u32, include_deleted: bool) -> ApiResult<Vec<(String, u32)>> {
        let mut out = Vec::new();
        for item in self.id_refs.scan_prefix(id.to_be_bytes()) {
            let (key, _) = item?;
            let Some((subject, v)) = split_key2(&key[4..]) else {
                continue;
            };
            let Ok(v) = <[u8; 4]>::try_from(v) else {
                continue;
            };
            let version = u32::from_be_bytes(v);
            let deleted = match self.versions.get(version_key(subject, version))? {
                Some(bytes) => decode::<VersionRecord>(&bytes)?.deleted,
                None => continue,
            };
            if include_deleted || !deleted {
                out.push((subject.to_string(), version));
            }
        }
        Ok(out)
    }

    /// The id of a schema already registered somewhere, by its identity text.
    pub fn id_of(&self, identity: &str) -> ApiResult<Option<u32>> {
        Ok(self
            .schema_ids
            .get(digest(identity))?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    /// The level set for a subject, if any.
    pub fn subject_level(&self, subject: &str) -> ApiResult<Option<CompatibilityLevel>> {
        self.level_at(subject.as_bytes())
    }

    /// The global level.
    pub fn global_level(&self) -> ApiResult<CompatibilityLevel> {
        Ok(self.level_at(GLOBAL)?.unwrap_or(DEFAULT_LEVEL))
    }

    /// The subject's level, else the global one.
    pub fn effective_level(&self, subject: &str) -> ApiResult<CompatibilityLevel> {
        match self.subject_level(subject)? {
            Some(level) => Ok(level),
            None => self.global_level(),
        }
    }

    fn level_at(&self, key: &[u8]) -> ApiResult<Option<CompatibilityLevel>> {
        match self.configs.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Sets (`Some`) or removes (`None`) a level; `subject` `None` is the global one.
    /// Returns the level in force before.
    pub fn set_level(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> ApiResult<Option<CompatibilityLevel>> {
        let key = subject.map(str::as_bytes).unwrap_or(GLOBAL);
        let previous = match level {
            Some(level) => self.configs.insert(key, encode(&level)?)?,
            None => self.configs.remove(key)?,
        };
        previous.map(|bytes| decode(&bytes)).transpose()
    }

    /// Registers a schema under a subject: the existing version if the subject already has
    /// this schema, else a new version after the level's compatibility check.
    /// Returns `(id, version)`.
    pub fn register(
        &self,
        subject: &str,
        schema: &Schema,
        canonical: &SchemaText,
    ) -> ApiResult<(u32, u32)> {
        let _guard = self.lock();
        let versions = self.subject_versions(subject)?;
        let existing_id = self.id_of(&canonical.identity)?;
        if let Some(id) = existing_id
            && let Some(v) = versions.iter().find(|v| v.id == id && !v.deleted)
        {
            return Ok((id, v.version));
        }

        let level = self.effective_level(subject)?;
        let live: Vec<SubjectVersion> = versions.iter().filter(|v| !v.deleted).cloned().collect();
        let previous = live
            .iter()
            .map(|v| parse_schema(&v.schema))
            .collect::<ApiResult<Vec<Schema>>>()?;
        if let Err(problems) = check_level(level, schema, &previous) {
            return Err(ApiError::IncompatibleSchema(format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                describe_problems(&problems, &live, level).join(", ")
            )));
        }

        let version = versions.last().map(|v| v.version + 1).unwrap_or(1);
        let digest = digest(&canonical.identity);
        let stored = encode(&StoredSchema {
            schema: canonical.text.clone(),
        })?;
        let id = (
            &self.schemas,
            &self.schema_ids,
            &self.versions,
            &self.id_refs,
            &self.meta,
        )
            .transaction(|(schemas, schema_ids, versions, id_refs, meta)| {
                let id = match existing_id {
                    Some(id) => id,
                    None => {
                        let next = meta
                            .get(b"next_schema_id")?
                            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
                            .map(u32::from_be_bytes)
                            .unwrap_or(1);
                        meta.insert(NEXT_ID, &(next + 1).to_be_bytes())?;
                        schemas.insert(&next.to_be_bytes(), stored.clone())?;
                        schema_ids.insert(&digest, &next.to_be_bytes())?;
                        next
                    }
                };
                let record =
                    serde_json::to_vec(&VersionRecord { id, deleted: false }).map_err(|e| {
                        ConflictableTransactionError::Abort(ApiError::Internal(e.to_string()))
                    })?;
                versions.insert(version_key(subject, version), record)?;
                id_refs.insert(ref_key(id, subject, version), &[] as &[u8])?;
                Ok(id)
            })?;
        Ok((id, version))
    }

    /// Soft-deletes (marks) or permanently deletes (after a soft delete) one version.
    pub fn delete_version(&self, subject: &str, version: u32, permanent: bool) -> ApiResult<()> {
        let _guard = self.lock();
        let key = version_key(subject, version);
        let mut record: VersionRecord = match self.versions.get(&key)? {
            Some(bytes) => decode(&bytes)?,
            None => return Err(ApiError::VersionNotFound(version.to_string())),
        };
        if permanent {
            if !record.deleted {
                return Err(ApiError::VersionNotSoftDeleted {
                    subject: subject.to_string(),
                    version,
                });
            }
            (&self.versions, &self.id_refs).transaction(|(versions, id_refs)| {
                versions.remove(key.as_slice())?;
                id_refs.remove(ref_key(record.id, subject, version))?;
                Ok(())
            })?;
        } else {
            if record.deleted {
                return Err(ApiError::VersionSoftDeleted {
                    subject: subject.to_string(),
                    version,
                });
            }
            record.deleted = true;
            self.versions.insert(key, encode(&record)?)?;
        }
        Ok(())
    }

    /// Deletes every version of a subject; returns the version numbers deleted.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> ApiResult<Vec<u32>> {
        let versions = self.subject_versions(subject)?;
        if versions.is_empty() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        let live: Vec<u32> = versions
            .iter()
            .filter(|v| !v.deleted)
            .map(|v| v.version)
            .collect();
        if permanent {
            if !live.is_empty() {
                return Err(ApiError::SubjectNotSoftDeleted(subject.to_string()));
            }
            for v in &versions {
                self.delete_version(subject, v.version, true)?;
            }
            self.configs.remove(subject.as_bytes())?;
            Ok(versions.iter().map(|v| v.version).collect())
        } else {
            if live.is_empty() {
                return Err(ApiError::SubjectSoftDeleted(subject.to_string()));
            }
            for &v in &live {
                self.delete_version(subject, v, false)?;
            }
            Ok(live)
        }
    }
}
