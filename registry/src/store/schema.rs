//! A schema as the store takes it in: parsed (42201 if it is not Avro), its two texts — as
//! given and canonical — and the digest of its identity, the record the `schemas` tree
//! holds, and the one-off rebuild of the identity index when the identity rule changes.
//! Subjects and plugins build on this; it depends on no other file of the store but the hub.

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::canonical::canonical_form;
use super::{Store, decode};
use crate::error::{ApiError, ApiResult};

/// Key of the version of the identity rule the `schema_ids` index was built with.
const IDENTITY_FORM: &[u8] = b"identity_form";
/// The identity rule of this build: 2 is [`super::canonical`]; 1 was sorted JSON.
const CURRENT_IDENTITY_FORM: &[u8] = b"2";

/// What the `schemas` tree holds under a schema id.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredSchema {
    pub schema: String,
}

/// Parses an Avro schema (JSON text) into the library's model; 42201 if it is not one.
pub fn parse_schema(text: &str) -> ApiResult<Schema> {
    weft_schema::parse_schema(text).map_err(|e| ApiError::InvalidSchema(e.to_string()))
}

/// A schema's two texts: compact JSON as given (what is stored and served), and its
/// [canonical form](super::canonical) (what identifies it), so a schema written two ways
/// gets one id and one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaText {
    pub identity: String,
    pub text: String,
}

impl SchemaText {
    /// What `?normalize=true` stores and serves: the canonical form itself.
    pub fn normalized(self) -> Self {
        Self {
            text: self.identity.clone(),
            identity: self.identity,
        }
    }
}

/// Builds a schema's [`SchemaText`]; 42201 if it is not JSON or not shaped like a schema.
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
    let identity = canonical_form(&value).map_err(ApiError::InvalidSchema)?;
    let compact = |v: &serde_json::Value| {
        serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()))
    };
    Ok(SchemaText {
        identity: compact(&identity)?,
        text: compact(&value)?,
    })
}

/// The `schema_ids` key of a schema's identity text.
pub(super) fn digest(identity: &str) -> [u8; 32] {
    Sha256::digest(identity.as_bytes()).into()
}

impl Store {
    /// At open: rebuilds the identity index if it was built with an older identity rule.
    /// When two stored schemas turn out to be one, the lower id keeps the identity.
    pub(super) fn migrate_identities(&self) -> ApiResult<()> {
        if self.meta.get(IDENTITY_FORM)?.as_deref() == Some(CURRENT_IDENTITY_FORM) {
            return Ok(());
        }
        self.schema_ids.clear()?;
        for item in self.schemas.iter() {
            let (id, bytes) = item?;
            let stored: StoredSchema = decode(&bytes)?;
            match canonical_schema(&stored.schema) {
                Ok(text) => {
                    let key = digest(&text.identity);
                    if self.schema_ids.get(key)?.is_none() {
                        self.schema_ids.insert(key, id)?;
                    }
                }
                Err(e) => tracing::warn!(?id, "stored schema has no canonical form: {e}"),
            }
        }
        self.meta.insert(IDENTITY_FORM, CURRENT_IDENTITY_FORM)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ids::ID_CEILING;

    fn register(store: &Store, subject: &str, text: &str) -> (u32, u32) {
        let schema = parse_schema(text).expect("valid schema");
        let canonical = canonical_schema(text).expect("canonical");
        store
            .register(subject, &schema, &canonical)
            .expect("register")
    }

    #[test]
    fn a_database_from_before_the_canonical_identity_is_reindexed_and_keeps_its_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dotted =
            r#"{"type":"record","name":"com.acme.N","fields":[{"name":"a","type":"int"}]}"#;
        let split = r#"{"type":"record","name":"N","namespace":"com.acme","fields":[{"name":"a","type":"int"}]}"#;
        {
            let store = Store::open(dir.path()).expect("open");
            assert_eq!(register(&store, "s", dotted), (1, 1));
            // What an older build left: an index keyed by another identity, no ceiling.
            store.schema_ids.clear().expect("clear");
            store
                .schema_ids
                .insert(digest("{old identity}"), &1u32.to_be_bytes())
                .expect("insert");
            store.meta.remove(IDENTITY_FORM).expect("remove");
            store.meta.remove(ID_CEILING).expect("remove");
            store.flush().expect("flush");
        }
        let store = Store::reopen(dir.path()).expect("reopen");
        let canonical = canonical_schema(split).expect("canonical");
        let found = store
            .lookup("s", &canonical.identity, false)
            .expect("found by its canonical form");
        assert_eq!((found.id, found.version), (1, 1));
        assert_eq!(
            register(&store, "s", split),
            (1, 1),
            "the same schema, not a new version"
        );
        let other = r#"{"type":"record","name":"com.acme.N","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#;
        let (id, version) = register(&store, "s", other);
        assert_eq!(version, 2);
        assert!(id > 1, "id {id} reused");
    }
}
