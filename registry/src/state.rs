//! Shared state of the HTTP service: settings, the store and the component inspector.

use std::sync::Arc;

use crate::config::Settings;
use crate::inspect::{Inspector, WasmInspector};
use crate::store::Store;

/// What every handler gets. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub inspector: Arc<dyn Inspector>,
}

impl AppState {
    /// Opens the data directory and starts the Wasm runtime used to validate uploads.
    pub fn open(settings: Settings) -> anyhow::Result<Self> {
        let inspector = Arc::new(WasmInspector::new()?);
        Self::with_inspector(settings, inspector)
    }

    /// Same with another inspector (tests use a fake one when no compiled plugin is needed).
    pub fn with_inspector(
        settings: Settings,
        inspector: Arc<dyn Inspector>,
    ) -> anyhow::Result<Self> {
        let store = Store::open(&settings.data_dir)?;
        Ok(Self {
            settings: Arc::new(settings),
            store,
            inspector,
        })
    }
}
