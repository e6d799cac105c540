//! Persistent state in one sled database: schemas and subjects, plugins and their bytes,
//! pipelines. Each resource keeps its operations in its own file.
//!
//! Every method is blocking (sled does file IO, the write lock may wait): handlers call them
//! through [`Store::read`] and [`Store::write`], which run them on tokio's blocking pool so
//! the async workers never stall. [`Store::write`] answers only once sled has flushed the
//! write to its log file: an acknowledged write survives a crash of the process. (On Linux
//! sled 0.34 makes the log durable with `sync_file_range`, which writes and waits for the
//! data but does not flush the disk's cache or the file's metadata: a power cut is not
//! covered as strictly as a crash.)

pub mod canonical;
mod ids;
mod level;
mod pipelines;
mod plugins;
mod schema;
mod subjects;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use ids::ID_BLOCK;
pub use level::SubjectLevel;
pub use pipelines::{ClusterPipelines, DeployedPipeline, Endpoint, Pipeline, PluginRef};
pub use plugins::{PutOutcome, semver_of};
pub use schema::{SchemaText, canonical_schema, parse_schema};
pub use subjects::{DEFAULT_LEVEL, SchemaEntry, SubjectVersion, describe_problems};

use crate::error::{ApiError, ApiResult};

/// Handles on the database's trees. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// schema id (u32 BE) → [`schema::StoredSchema`]
    schemas: sled::Tree,
    /// sha256 of the canonical schema text → schema id: the same schema, the same id.
    schema_ids: sled::Tree,
    /// subject \0 version (u32 BE) → [`subjects::VersionRecord`]
    versions: sled::Tree,
    /// schema id (u32 BE) subject \0 version (u32 BE) → (): which versions use an id, and
    /// (scanned by id and subject) which versions of a subject hold a schema.
    id_refs: sled::Tree,
    /// subject, or [`subjects::GLOBAL`] → [`SubjectLevel`]
    configs: sled::Tree,
    /// counters: the next schema id and the durable ceiling below which ids may be handed out
    meta: sled::Tree,
    /// plugin name \0 version → [`PluginVersion`]
    plugins: sled::Tree,
    /// sha256 hex → component bytes (content-addressed)
    blobs: sled::Tree,
    /// plugin name → compatibility level of its evolution
    plugin_configs: sled::Tree,
    /// pipeline name → [`Pipeline`]
    pipelines: sled::Tree,
    /// Serialises check-then-write sequences (compatibility checks against the versions
    /// present, id allocation). sled transactions keep each write atomic on disk.
    write_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    /// [`Store::open`] of a folder a store of this process had open a moment ago (a test's
    /// "restart"): sled's background flusher holds the folder's lock for a little while after
    /// the dropped store, longer on a loaded machine, so the open is retried while the lock
    /// is held (at most 10 s).
    #[cfg(test)]
    pub(crate) fn reopen(dir: &Path) -> ApiResult<Self> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Self::open(dir) {
                Err(ApiError::Store(e))
                    if e.contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => return opened,
            }
        }
    }

    pub fn open(dir: &Path) -> ApiResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ApiError::Store(format!("creating data dir {dir:?}: {e}")))?;
        let db = sled::open(dir.join("db"))?;
        let store = Self {
            schemas: db.open_tree("schemas")?,
            schema_ids: db.open_tree("schema_ids")?,
            versions: db.open_tree("versions")?,
            id_refs: db.open_tree("id_refs")?,
            configs: db.open_tree("configs")?,
            meta: db.open_tree("meta")?,
            plugins: db.open_tree("plugins")?,
            blobs: db.open_tree("blobs")?,
            plugin_configs: db.open_tree("plugin_configs")?,
            pipelines: db.open_tree("pipelines")?,
            db,
            write_lock: Arc::new(Mutex::new(())),
        };
        store.recover_ids()?;
        store.migrate_identities()?;
        store.flush()?;
        Ok(store)
    }

    /// Writes every write so far to the log file and waits for it, so it survives a crash.
    pub fn flush(&self) -> ApiResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Runs blocking store work (reads, CPU-bound checks) on the blocking pool.
    pub async fn read<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> ApiResult<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| ApiError::Internal(format!("store task: {e}")))?
    }

    /// Same for a write: returns only after the write is flushed to disk, so a 200 means
    /// durable. The flush runs after the write lock is released, so concurrent writers
    /// share one sync instead of queueing one each behind the lock.
    pub async fn write<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> ApiResult<T> + Send + 'static,
    {
        self.read(move |store| {
            let out = work(store)?;
            store.flush()?;
            Ok(out)
        })
        .await
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no half-written state (writes are
        // transactions), so a poisoned lock is still safe to take.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `a \0 b`: a composite key whose first part contains no NUL (names are validated).
fn key2(first: &str, second: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(first.len() + 1 + second.len());
    key.extend_from_slice(first.as_bytes());
    key.push(0);
    key.extend_from_slice(second);
    key
}

/// Splits a [`key2`] key.
fn split_key2(key: &[u8]) -> Option<(&str, &[u8])> {
    let at = key.iter().position(|&b| b == 0)?;
    let first = std::str::from_utf8(&key[..at]).ok()?;
    Some((first, &key[at + 1..]))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn encode<T: serde::Serialize>(value: &T) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ApiError::Internal(format!("encoding a record: {e}")))
}
