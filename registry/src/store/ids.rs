//! Schema ids: handed out once, ever. A durable ceiling is raised before an id past it is
//! used, and a restart continues above it, so an id a client (or a reader) may have seen
//! before a crash is never given to another schema. Registering a subject version takes its
//! id from here; this file depends on no other file of the store but the hub.

use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use super::Store;
use crate::error::{ApiError, ApiResult};

/// Key of the next schema id in the `meta` tree.
const NEXT_ID: &[u8] = b"next_schema_id";
/// Key of the id ceiling in the `meta` tree: ids below it may have been handed out, so a
/// restart starts above it. It is raised (and flushed) before an id past it is used.
pub(super) const ID_CEILING: &[u8] = b"schema_id_ceiling";
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
}

/// Takes the next schema id inside the transaction that stores the schema under it, so the
/// id and the schema are written together. [`Store::reserve_id`] has made sure it is below
/// the durable ceiling.
pub(super) fn take_next_id(meta: &TransactionalTree) -> Result<u32, UnabortableTransactionError> {
    let next = meta
        .get(NEXT_ID)?
        .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(1);
    meta.insert(NEXT_ID, &(next + 1).to_be_bytes())?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{canonical_schema, parse_schema};

    fn register(store: &Store, subject: &str, text: &str) -> (u32, u32) {
        let schema = parse_schema(text).expect("valid schema");
        let canonical = canonical_schema(text).expect("canonical");
        store
            .register(subject, &schema, &canonical)
            .expect("register")
    }

    #[test]
    fn a_restart_continues_above_every_id_that_may_have_been_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = |n: u32| {
            format!(r#"{{"type":"record","name":"R","fields":[{{"name":"f{n}","type":"int"}}]}}"#)
        };
        let mut seen = Vec::new();
        for round in 0..3 {
            let store = Store::reopen(dir.path()).expect("open");
            store
                .set_level(None, Some(weft_schema::CompatibilityLevel::None.into()))
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
