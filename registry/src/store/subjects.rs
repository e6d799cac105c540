//! Schema subjects with Confluent semantics: global schema ids, per-subject versions, soft
//! and permanent deletes, compatibility levels.

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use weft_schema::{CompatibilityLevel, Incompatibility, check_level};

use super::level::SubjectLevel;

use super::ids::take_next_id;
use super::schema::{SchemaText, StoredSchema, digest, parse_schema};
use super::{Store, decode, encode, key2, split_key2};
use crate::error::{ApiError, ApiResult};

/// Key of the global compatibility level in the `configs` tree (no subject contains NUL).
pub(crate) const GLOBAL: &[u8] = b"\0global";
/// The level of a registry nobody configured, as in Confluent's.
pub const DEFAULT_LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

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

fn version_key(subject: &str, version: u32) -> Vec<u8> {
    key2(subject, &version.to_be_bytes())
}

fn ref_key(id: u32, subject: &str, version: u32) -> Vec<u8> {
    let mut key = id.to_be_bytes().to_vec();
    key.extend_from_slice(&version_key(subject, version));
    key
}

/// Formats problems the way Confluent's verbose answers do, naming the version and level.
pub fn describe_problems(
    problems: &[Incompatibility],
    versions: &[SubjectVersion],
    level: SubjectLevel,
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
    /// `(version, record)` of a subject, oldest first, soft-deleted ones included; the
    /// iterator runs both ways, so the newest costs one step.
    fn records(
        &self,
        subject: &str,
    ) -> impl DoubleEndedIterator<Item = ApiResult<(u32, VersionRecord)>> + use<> {
        self.versions.scan_prefix(key2(subject, &[])).map(|item| {
            let (key, value) = item?;
            let version = match split_key2(&key) {
                Some((_, v)) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                _ => return Err(ApiError::Store(format!("bad version key {key:?}"))),
            };
            Ok((version, decode::<VersionRecord>(&value)?))
        })
    }

    fn with_text(
        &self,
        subject: &str,
        version: u32,
        record: VersionRecord,
    ) -> ApiResult<SubjectVersion> {
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version,
            id: record.id,
            deleted: record.deleted,
            schema: self.schema_text(record.id)?,
        })
    }

    /// All versions of a subject, soft-deleted ones included, oldest first.
    pub fn subject_versions(&self, subject: &str) -> ApiResult<Vec<SubjectVersion>> {
        self.records(subject)
            .map(|r| r.and_then(|(version, record)| self.with_text(subject, version, record)))
            .collect()
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

    /// Version numbers of a subject, oldest first, without reading any schema; 40401 as
    /// [`Store::live_versions`].
    pub fn version_numbers(&self, subject: &str, include_deleted: bool) -> ApiResult<Vec<u32>> {
        let mut out = Vec::new();
        for item in self.records(subject) {
            let (version, record) = item?;
            if include_deleted || !record.deleted {
                out.push(version);
            }
        }
        if out.is_empty() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        Ok(out)
    }

    /// The newest version (soft-deleted ones only if asked), if any: a walk back from the
    /// end of the subject's keys, one step unless the newest versions are deleted.
    fn newest(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> ApiResult<Option<(u32, VersionRecord)>> {
        for item in self.records(subject).rev() {
            let (version, record) = item?;
            if include_deleted || !record.deleted {
                return Ok(Some((version, record)));
            }
        }
        Ok(None)
    }

    /// One version of a subject: `None` is the latest. 40401 if the subject has no version
    /// to consider, 40402 if it has but not this one. One key lookup, whatever the history.
    pub fn version(
        &self,
        subject: &str,
        number: Option<u32>,
        include_deleted: bool,
    ) -> ApiResult<SubjectVersion> {
        let not_found = || ApiError::SubjectNotFound(subject.to_string());
        let Some(number) = number else {
            let (version, record) = self
                .newest(subject, include_deleted)?
                .ok_or_else(not_found)?;
            return self.with_text(subject, version, record);
        };
        if let Some(bytes) = self.versions.get(version_key(subject, number))? {
            let record: VersionRecord = decode(&bytes)?;
            if include_deleted || !record.deleted {
                return self.with_text(subject, number, record);
            }
        }
        match self.newest(subject, include_deleted)? {
            Some(_) => Err(ApiError::VersionNotFound(number.to_string())),
            None => Err(not_found()),
        }
    }

    /// The newest version of a subject holding a schema (by identity); 40401 if the subject
    /// has no version to consider, 40403 if none holds it. Index lookups only.
    pub fn lookup(
        &self,
        subject: &str,
        identity: &str,
        include_deleted: bool,
    ) -> ApiResult<SubjectVersion> {
        if self.newest(subject, include_deleted)?.is_none() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        let id = self.id_of(identity)?.ok_or(ApiError::SchemaNotFound)?;
        let (version, record) = self
            .holding(subject, id, include_deleted)?
            .ok_or(ApiError::SchemaNotFound)?;
        self.with_text(subject, version, record)
    }

    /// The newest version of `subject` using schema `id` (soft-deleted only if asked).
    fn holding(
        &self,
        subject: &str,
        id: u32,
        include_deleted: bool,
    ) -> ApiResult<Option<(u32, VersionRecord)>> {
        let mut prefix = id.to_be_bytes().to_vec();
        prefix.extend_from_slice(&key2(subject, &[]));
        for item in self.id_refs.scan_prefix(prefix).rev() {
            let (key, _) = item?;
            let Ok(v) = <[u8; 4]>::try_from(&key[key.len() - 4..]) else {
                continue;
            };
            let version = u32::from_be_bytes(v);
            if let Some(bytes) = self.versions.get(version_key(subject, version))? {
                let record: VersionRecord = decode(&bytes)?;
                if include_deleted || !record.deleted {
                    return Ok(Some((version, record)));
                }
            }
        }
        Ok(None)
    }

    /// Subject names, sorted; soft-deleted subjects only when asked. Skips from one subject
    /// to the next rather than reading every version.
    pub fn subjects(&self, include_deleted: bool, prefix: &str) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut from = prefix.as_bytes().to_vec();
        loop {
            let Some(item) = self.versions.range(from.clone()..).next() else {
                break;
            };
            let (key, _) = item?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let Some((subject, _)) = split_key2(&key) else {
                return Err(ApiError::Store(format!("bad version key {key:?}")));
            };
            if self.newest(subject, include_deleted)?.is_some() {
                out.push(subject.to_string());
            }
            // `subject \x01` sorts after every `subject \0 version` key.
            from = key2(subject, &[]);
            if let Some(last) = from.last_mut() {
                *last = 1;
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
    pub fn subject_level(&self, subject: &str) -> ApiResult<Option<SubjectLevel>> {
        self.level_at(subject.as_bytes())
    }

    /// The global level.
    pub fn global_level(&self) -> ApiResult<SubjectLevel> {
        Ok(self.level_at(GLOBAL)?.unwrap_or(DEFAULT_LEVEL.into()))
    }

    /// The subject's level, else the global one.
    pub fn effective_level(&self, subject: &str) -> ApiResult<SubjectLevel> {
        match self.subject_level(subject)? {
            Some(level) => Ok(level),
            None => self.global_level(),
        }
    }

    fn level_at(&self, key: &[u8]) -> ApiResult<Option<SubjectLevel>> {
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
        level: Option<SubjectLevel>,
    ) -> ApiResult<Option<SubjectLevel>> {
        let key = subject.map(str::as_bytes).unwrap_or(GLOBAL);
        let previous = match level {
            Some(level) => self.configs.insert(key, encode(&level)?)?,
            None => self.configs.remove(key)?,
        };
        previous.map(|bytes| decode(&bytes)).transpose()
    }

    /// The versions a new schema is checked against under `level`: the latest live one, or
    /// every live one for the transitive levels (the only reads that grow with history).
    pub fn compared_versions(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> ApiResult<Vec<SubjectVersion>> {
        let transitive = matches!(
            level,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        );
        if level == CompatibilityLevel::None {
            Ok(Vec::new())
        } else if transitive {
            Ok(self
                .subject_versions(subject)?
                .into_iter()
                .filter(|v| !v.deleted)
                .collect())
        } else {
            self.newest(subject, false)?
                .map(|(version, record)| self.with_text(subject, version, record))
                .into_iter()
                .collect()
        }
    }

    /// Registers a schema under a subject: the existing version if the subject already has
    /// this schema, else a new version after the level's compatibility check.
    /// Returns `(id, version)`. Not durable until [`Store::flush`] (see [`Store::write`]).
    pub fn register(
        &self,
        subject: &str,
        schema: &Schema,
        canonical: &SchemaText,
    ) -> ApiResult<(u32, u32)> {
        let _guard = self.lock();
        let existing_id = self.id_of(&canonical.identity)?;
        if let Some(id) = existing_id
            && let Some((version, _)) = self.holding(subject, id, false)?
        {
            return Ok((id, version));
        }

        let level = self.effective_level(subject)?;
        let compared = self.compared_versions(subject, level.avro())?;
        let previous = compared
            .iter()
            .map(|v| parse_schema(&v.schema))
            .collect::<ApiResult<Vec<Schema>>>()?;
        if let Err(problems) = check_level(level.avro(), schema, &previous) {
            return Err(ApiError::IncompatibleSchema(format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                describe_problems(&problems, &compared, level).join(", ")
            )));
        }
        if level.guards_pipelines() {
            let blocked = self.pipelines_guard(subject, schema)?;
            if !blocked.is_empty() {
                return Err(ApiError::IncompatibleSchema(format!(
                    "Schema being registered would block the upgrade of pipelines reading subject \"{subject}\" (compatibility PIPELINES), details: [{}]",
                    blocked.join(", ")
                )));
            }
        }

        let version = match self.records(subject).next_back().transpose()? {
            Some((last, _)) => last
                .checked_add(1)
                .ok_or_else(|| ApiError::Store(format!("subject {subject} has no version left")))?,
            None => 1,
        };
        if existing_id.is_none() {
            self.reserve_id()?;
        }
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
                        let next = take_next_id(meta)?;
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

    /// Why `candidate` would block the upgrade of the pipelines reading `subject`, directly
    /// or downstream: a field some stage reads removed or retyped against the latest live
    /// version (what those pipelines run on). Empty when nothing blocks or the subject has
    /// no version yet.
    pub fn pipelines_guard(&self, subject: &str, candidate: &Schema) -> ApiResult<Vec<String>> {
        let Some((version, record)) = self.newest(subject, false)? else {
            return Ok(Vec::new());
        };
        let latest = parse_schema(&self.with_text(subject, version, record)?.schema)?;
        let changes =
            crate::fields::changes(&latest, candidate).map_err(ApiError::InvalidSchema)?;
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let pipelines = self.all_pipelines()?;
        Ok(crate::fields::guard_messages(&pipelines, subject, &changes))
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
        let versions = self.records(subject).collect::<ApiResult<Vec<_>>>()?;
        if versions.is_empty() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        let live: Vec<u32> = versions
            .iter()
            .filter(|(_, r)| !r.deleted)
            .map(|(v, _)| *v)
            .collect();
        if permanent {
            if !live.is_empty() {
                return Err(ApiError::SubjectNotSoftDeleted(subject.to_string()));
            }
            for (v, _) in &versions {
                self.delete_version(subject, *v, true)?;
            }
            self.configs.remove(subject.as_bytes())?;
            Ok(versions.iter().map(|(v, _)| *v).collect())
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
