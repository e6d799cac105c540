//! Where each event of a batch was read (a Kafka source's topic, partition and offset),
//! carried beside the batch instead of inside its events, and shown only on dead letters, as
//! `weft.source.*` headers.
//!
//! As three header strings per event the position cost six allocations at the source and
//! their frees, for something only a dead letter (rare) shows: beside the batch it is one
//! `Arc<str>` per topic and two integers per event. No stage is handed it and none can set it:
//! a `weft.source.*` header a processor emits is dropped, and a dead letter's position
//! headers are the host's, replacing any of that name the event carried.

use std::sync::Arc;

use super::bindings::Header;

/// Headers whose key starts with this are the source's position, which only the host sets.
pub const POSITION_PREFIX: &str = "weft.source.";
/// The position headers of a dead letter.
pub const HEADER_SOURCE_TOPIC: &str = "weft.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "weft.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "weft.source.offset";

/// Whether `key` names a position header (see [`POSITION_PREFIX`]).
pub fn is_position(key: &str) -> bool {
    key.starts_with(POSITION_PREFIX)
}

/// Where an event was read. A batch's positions share one `topic` per topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    /// The position as `weft.source.topic`, `.partition` and `.offset` headers.
    pub fn headers(&self) -> [Header; 3] {
        let header = |key: &str, value: String| Header {
            key: key.to_string(),
            value: value.into_bytes(),
        };
        [
            header(HEADER_SOURCE_TOPIC, self.topic.to_string()),
            header(HEADER_SOURCE_PARTITION, self.partition.to_string()),
            header(HEADER_SOURCE_OFFSET, self.offset.to_string()),
        ]
    }

    /// Puts the position headers after `headers`, in place of any position header already
    /// there: what a dead letter says about where it was read is the host's word only.
    pub fn put_on(&self, headers: &mut Vec<Header>) {
        drop_forged(headers);
        headers.extend(self.headers());
    }
}

/// The position of item `index` of a batch whose positions are `positions`: one per item, or
/// fewer, when the items past its end (read from a source without positions, in a union of
/// sources) have none.
pub fn position_at(positions: &[Option<Position>], index: usize) -> Option<&Position> {
    positions.get(index).and_then(Option::as_ref)
}

/// Items on their way through the chain, each with the index of the input event it comes
/// from (its origin), whose position it has.
pub(crate) struct Traced<T> {
    pub items: Vec<T>,
    pub origins: Vec<u32>,
}

impl<T> Default for Traced<T> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<T> Traced<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Vec::with_capacity(capacity),
            origins: Vec::with_capacity(capacity),
        }
    }

    /// A batch's input: each item its own origin.
    pub fn input(items: Vec<T>) -> Self {
        let origins = (0..items.len() as u32).collect();
        Self { items, origins }
    }

    pub fn push(&mut self, origin: u32, item: T) {
        self.items.push(item);
        self.origins.push(origin);
    }

    /// Several items from one origin (what a processor emitted for one input event).
    pub fn extend(&mut self, origin: u32, items: Vec<T>) {
        self.origins
            .extend(std::iter::repeat_n(origin, items.len()));
        self.items.extend(items);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Room for `additional` more items.
    pub fn reserve(&mut self, additional: usize) {
        self.items.reserve(additional);
        self.origins.reserve(additional);
    }

    /// Items (and their origins) taken out in order, leaving the buffers' capacity.
    pub fn drain(&mut self) -> impl Iterator<Item = (T, u32)> + '_ {
        self.items.drain(..).zip(self.origins.drain(..))
    }
}

/// The positions of a chain's outputs, whose origins are `origins`, from its inputs'
/// `positions` (see [`position_at`]); as short as that rule allows.
///
/// The chain keeps every stage's outputs in input order, so origins never decrease: each
/// input's position is then moved to its last output and cloned for the others (a fan-out),
/// and a chain that keeps every event hands the inputs' vector on as it is.
pub(crate) fn follow(positions: Vec<Option<Position>>, origins: &[u32]) -> Vec<Option<Position>> {
    if positions.is_empty() {
        return positions;
    }
    if !origins.windows(2).all(|w| w[0] <= w[1]) {
        // Not what the chain makes; still right, at a clone per output.
        return origins
            .iter()
            .map(|&o| position_at(&positions, o as usize).cloned())
            .collect();
    }
    let known = origins.partition_point(|&o| (o as usize) < positions.len());
    let origins = &origins[..known];
    if origins.iter().enumerate().all(|(i, &o)| o as usize == i) {
        let mut positions = positions;
        positions.truncate(known);
        return positions;
    }
    let mut out = Vec::with_capacity(known);
    let mut inputs = positions.into_iter().enumerate();
    let mut current: Option<(usize, Option<Position>)> = None;
    for (i, &origin) in origins.iter().enumerate() {
        let at = origin as usize;
        let position = match current.take() {
            Some((held, position)) if held == at => position,
            _ => inputs
                .by_ref()
                .find_map(|(index, position)| (index == at).then_some(position))
                .expect("origins are ordered and within the positions (checked above)"),
        };
        if origins.get(i + 1) == Some(&origin) {
            out.push(position.clone());
            current = Some((at, position));
        } else {
            out.push(position);
        }
    }
    out
}

/// Drops the position headers in `headers`: a processor's outputs carry none (only a dead
/// letter does, the host's), so a processor cannot forge where an event was read.
pub(crate) fn drop_forged(headers: &mut Vec<Header>) {
    if headers.iter().any(|h| is_position(&h.key)) {
        headers.retain(|h| !is_position(&h.key));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header(key: &str, value: &str) -> Header {
        Header {
            key: key.into(),
            value: value.into(),
        }
    }

    fn at(offset: i64) -> Option<Position> {
        Some(Position {
            topic: Arc::from("t"),
            partition: 0,
            offset,
        })
    }

    fn offsets(positions: &[Option<Position>]) -> Vec<Option<i64>> {
        positions
            .iter()
            .map(|p| p.as_ref().map(|p| p.offset))
            .collect()
    }

    #[test]
    fn a_position_replaces_any_position_header_and_comes_after_the_others() {
        let mut headers = vec![
            header("a", "1"),
            header("weft.source.offset", "forged"),
            header("b", "2"),
        ];
        Position {
            topic: Arc::from("orders"),
            partition: 3,
            offset: 42,
        }
        .put_on(&mut headers);
        let kept: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                ("a", b"1".as_slice()),
                ("b", b"2".as_slice()),
                ("weft.source.topic", b"orders".as_slice()),
                ("weft.source.partition", b"3".as_slice()),
                ("weft.source.offset", b"42".as_slice()),
            ]
        );
    }

    #[test]
    fn outputs_follow_their_inputs_through_filters_and_fan_outs() {
        // Input 0 fans out to two outputs, 1 is filtered out, 2 is kept.
        let positions = vec![at(10), at(11), at(12)];
        assert_eq!(
            offsets(&follow(positions.clone(), &[0, 0, 2])),
            [Some(10), Some(10), Some(12)]
        );
        assert_eq!(
            offsets(&follow(positions.clone(), &[0, 1, 2])),
            offsets(&positions)
        );
        assert!(follow(positions.clone(), &[]).is_empty());
        // Inputs past the positions' end (a source without positions) have none.
        assert_eq!(offsets(&follow(vec![at(10)], &[0, 1, 1])), [Some(10)]);
        assert!(follow(Vec::new(), &[0, 1]).is_empty());
    }

    proptest! {
        /// However a chain filters and fans events out, each output gets its input's
        /// position, outputs of inputs without one get none, and only those are left off
        /// the end.
        #[test]
        fn every_output_gets_exactly_its_inputs_position(
            inputs in proptest::collection::vec(proptest::option::of(0i64..1000), 0..12),
            known in 0usize..14,
            fan_out in proptest::collection::vec(0usize..4, 12),
            shuffled in any::<bool>(),
        ) {
            let positions: Vec<Option<Position>> = inputs
                .iter()
                .take(known)
                .map(|o| o.and_then(at))
                .collect();
            let mut origins: Vec<u32> = (0..inputs.len())
                .flat_map(|i| std::iter::repeat_n(i as u32, fan_out[i]))
                .collect();
            if shuffled {
                origins.reverse();
            }
            let out = follow(positions.clone(), &origins);
            prop_assert!(out.len() <= origins.len());
            for (i, &origin) in origins.iter().enumerate() {
                let expected = position_at(&positions, origin as usize);
                prop_assert_eq!(out.get(i).and_then(Option::as_ref), expected);
            }
        }
    }
}
