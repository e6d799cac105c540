//! [`Stall`]: what a sink is waiting for while it retries, for `weft serve`'s status. A
//! flush that holds its batch and sends it again (a Kafka broker that is down) blocks the
//! pipeline's thread inside the sink, so the sink itself must say so where the status reads.

use std::sync::{Arc, Mutex, MutexGuard};

/// A cheap shared slot: a sink sets it while it retries and clears it when its flush
/// returns; whoever owns the pipeline reads it. Sinks of one pipeline share it (they flush
/// one after the other on the same thread, so one slot is enough).
#[derive(Debug, Clone, Default)]
pub struct Stall(Arc<Mutex<Option<String>>>);

impl Stall {
    fn slot(&self) -> MutexGuard<'_, Option<String>> {
        // A reason is one string: whatever panicked while holding the lock left a whole one.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says why the sink is waiting (`sink kafka orders: …`).
    pub fn set(&self, why: String) {
        *self.slot() = Some(why);
    }

    pub fn clear(&self) {
        *self.slot() = None;
    }

    /// Why a sink is waiting now, if one is.
    pub fn get(&self) -> Option<String> {
        self.slot().clone()
    }
}
