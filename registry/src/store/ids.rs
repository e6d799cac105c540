//! Schema ids: handed out once, ever. A durable ceiling is raised before an id past it is
//! used, and a restart continues above it, so an id a client (or a reader) may have seen
//! before a crash is never given to another schema. Also the one-off rebuild of the identity
//! index when the identity rule changes.

use super::Store;
use super::decode;
use super::subjects::{StoredSchema, canonical_schema, digest};
use crate::error::{ApiError, ApiResult};

/// Key of the next schema id in the `meta` tree.
pub(super) const NEXT_ID: &[u8] = b"next_schema_id";
/// Key of the id ceiling in the `meta` tree: ids below it may have been handed out, so a
/// restart starts above it. It is raised (and flushed) before an id past it is used.
const ID_CEILING: &[u8] = b"schema_id_ceiling";
/// Key of the version of the identity rule the `schema_ids` index was built with.
const IDENTITY_FORM: &[u8] = b"identity_form";
/// The identity rule of this build: 2 is [`super::canonical`]; 1 was sorted JSON.
const CURRENT_IDENTITY_FORM: &[u8] = b"2";
/// How many ids one durable raise of the ceiling covers. A crash skips at most this many
/// ids (as Confluent's ZooKeeper-era id batches did); it never reuses one.
pub const ID_BLOCK: u32 = 20;

impl Store {
    pub(super) fn meta_u32(&self, key: &[u8]) -> ApiResult<Option<u32>> {
        Ok(self
            .meta
            .get(key)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    /// Makes sure the next id is below the durable ceiling, raising it (and flushing) if not.
    /// Called under the write lock, before the id is used: whatever a crash loses, an id a
    /// client or a reader may have seen is never handed out again.
    pub(super) fn reserve_id(&self) -> ApiResult<()> {
        let next = self.meta_u32(NEXT_ID)?.unwrap_or(1);
        let ceiling = self.meta_u32(ID_CEILING)?.unwrap_or(1);
        if next < ceiling {
            return Ok(());
        }
        let raised = next
            .checked_add(ID_BLOCK)
            .ok_or_else(|| ApiError::Store("schema ids exhausted".into()))?;
        self.meta.insert(ID_CEILING, &raised.to_be_bytes())?;
        self.flush()
    }

    /// At open: ids up to the ceiling may have been seen before a crash, so continue above it.
    pub(super) fn recover_ids(&self) -> ApiResult<()> {
        let next = self.meta_u32(NEXT_ID)?.unwrap_or(1);
        match self.meta_u32(ID_CEILING)? {
            Some(ceiling) if ceiling > next => {
                self.meta.insert(NEXT_ID, &ceiling.to_be_bytes())?;
            }
            Some(_) => {}
            // A database from before the ceiling: every id it used is below `next`.
            None => {
                self.meta.insert(ID_CEILING, &next.to_be_bytes())?;
            }
        }
        Ok(())
    }

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
    use crate::store::parse_schema;

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
        let store = Store::open(dir.path()).expect("reopen");
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

    #[test]
    fn a_restart_continues_above_every_id_that_may_have_been_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = |n: u32| {
            format!(r#"{{"type":"record","name":"R","fields":[{{"name":"f{n}","type":"int"}}]}}"#)
        };
        let mut seen = Vec::new();
        for round in 0..3 {
            let store = Store::open(dir.path()).expect("open");
            store
                .set_level(None, Some(weft_schema::CompatibilityLevel::None))
                .expect("level");
            for n in 0..5 {
                seen.push(register(&store, "s", &schema(round * 10 + n)).0);
            }
            // Dropped without a flush of the last writes: only the ceiling is known durable.
        }
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "an id was handed out twice: {seen:?}"
        );
    }
}
