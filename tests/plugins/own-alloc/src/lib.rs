//! `own-alloc`: a processor that installs its own global allocator, as an author may when
//! they turn off the SDK's (`weft-guest` with `default-features = false`). With the SDK's
//! allocator on, this crate would not build: a component has one global allocator.
//!
//! Its allocator counts allocations; each event is emitted unchanged with the count so far
//! in a header `own-alloc-allocations`, so a test can see whose allocator served the SDK.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use weft_guest::avro::Schema;
use weft_guest::{
    ConfigError, Configured, Event, EventMeta, Manifest, Params, Record, RecordOutcome,
    RecordProcessor,
};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator (wasi-libc's dlmalloc), counting.
pub struct Counting;

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from `System.alloc` with this layout.
        unsafe { System.dealloc(block, layout) }
    }
}

// Only in the component, like the SDK's own: natively this crate stays a plain library.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: Counting = Counting;

pub struct OwnAlloc;

impl RecordProcessor for OwnAlloc {
    const MANIFEST: Manifest = Manifest {
        name: "own-alloc",
        version: env!("CARGO_PKG_VERSION"),
        description: "Keeps every event, adding how many allocations its own allocator served.",
        params: &[],
    };

    fn configure(
        _params: &Params,
        _input_schema: &Schema,
    ) -> Result<Configured<Self>, ConfigError> {
        Ok(Configured::same_schema(Self))
    }

    fn process(&mut self, record: Record, _meta: &EventMeta<'_>) -> RecordOutcome {
        let allocations = ALLOCATIONS.load(Ordering::Relaxed);
        RecordOutcome::EmitEvents(vec![
            Event::new(record).with_header("own-alloc-allocations", allocations.to_string()),
        ])
    }
}

weft_guest::export_record!(OwnAlloc);
