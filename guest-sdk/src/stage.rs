//! The bottom of the SDK's processing side: a configured processor, whichever API it was
//! written against. `record` and `typed` implement it; `runtime` (the WIT exports) and
//! `testing` drive it, so neither API's module needs the exports and the exports need both.

use crate::bindings::weft::processor::types as wit;

/// A configured processor: one batch in, one outcome per event out.
pub(crate) trait Stage {
    fn process_batch(&mut self, batch: Vec<wit::Event>) -> Result<Vec<wit::Outcome>, String>;
}

/// A configured processor and what `configure` answers the host: the output schema and the
/// input fields it reads.
pub(crate) type Ready = (Box<dyn Stage>, wit::Configured);
