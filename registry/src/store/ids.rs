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
