//! The source's position headers (`weft.source.*`), held by the host while a batch crosses
//! the chain: no stage is handed them and none can change them, and every output and dead
//! letter gets its input's back.
//!
//! They name where an event was read (a Kafka source adds topic, partition and offset) so a
//! dead letter can say it. Lowered into every stage they cost six guest allocations and
//! their copies per event per stage, and lifted back out with each emitted event, for
//! nothing a processor should act on; held here they are moved once in and once out.

use super::bindings::{Event, Header};
use super::chain::DeadLetter;

/// Headers whose key starts with this are the source's position, which the host keeps.
pub const POSITION_PREFIX: &str = "weft.source.";

/// Whether `key` names a position header (see [`POSITION_PREFIX`]).
pub fn is_position(key: &str) -> bool {
    key.starts_with(POSITION_PREFIX)
}

/// Items on their way through the chain, each with the index of the input event it comes
/// from (its origin), whose positions it gets back at the end.
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

/// The position headers of one batch, by input index.
pub(crate) struct Positions {
    held: Vec<Vec<Header>>,
}

impl Positions {
    /// Takes the position headers out of every event of `batch` (moved, not copied), and
    /// traces each event to its own index.
    pub fn hold(mut batch: Vec<Event>) -> (Self, Traced<Event>) {
        let held = batch
            .iter_mut()
            .map(|event| take_positions(&mut event.headers))
            .collect();
        let origins = (0..batch.len() as u32).collect();
        (
            Self { held },
            Traced {
                items: batch,
                origins,
            },
        )
    }

    /// Gives every output and every dead letter the positions of the input it comes from,
    /// after its own headers. An input's headers are moved to its last user and cloned for
    /// the others (a fan-out, or an event dead-lettered downstream of a sibling that got
    /// through).
    pub fn restore(
        mut self,
        events: Traced<Event>,
        dead: Traced<DeadLetter>,
    ) -> (Vec<Event>, Vec<DeadLetter>) {
        if self.held.iter().all(Vec::is_empty) {
            return (events.items, dead.items);
        }
        let mut uses = vec![0u32; self.held.len()];
        for &origin in events.origins.iter().chain(&dead.origins) {
            uses[origin as usize] += 1;
        }
        let mut give = |origin: u32, headers: &mut Vec<Header>| {
            let origin = origin as usize;
            let held = &mut self.held[origin];
            if held.is_empty() {
                return;
            }
            uses[origin] -= 1;
            if uses[origin] == 0 && headers.is_empty() {
                *headers = std::mem::take(held);
            } else if uses[origin] == 0 {
                headers.append(held);
            } else {
                headers.extend_from_slice(held);
            }
        };
        let Traced {
            items: mut out,
            origins,
        } = events;
        for (event, origin) in out.iter_mut().zip(origins) {
            give(origin, &mut event.headers);
        }
        let Traced {
            items: mut letters,
            origins,
        } = dead;
        for (letter, origin) in letters.iter_mut().zip(origins) {
            give(origin, &mut letter.event.headers);
        }
        (out, letters)
    }
}

/// Removes the position headers from `headers` and returns them, in their order. A batch
/// without any (a file source) costs one scan of the keys; positions after every other
/// header, as the Kafka source adds them, are split off without touching the rest.
fn take_positions(headers: &mut Vec<Header>) -> Vec<Header> {
    let Some(first) = headers.iter().position(|h| is_position(&h.key)) else {
        return Vec::new();
    };
    if headers[first..].iter().all(|h| is_position(&h.key)) {
        return if first == 0 {
            std::mem::take(headers)
        } else {
            headers.split_off(first)
        };
    }
    let (positions, rest): (Vec<Header>, Vec<Header>) = std::mem::take(headers)
        .into_iter()
        .partition(|h| is_position(&h.key));
    *headers = rest;
    positions
}

/// Drops the position headers a processor emitted: the host's are the only ones an output
/// carries, so a processor cannot forge or duplicate where an event was read.
pub(crate) fn drop_forged(headers: &mut Vec<Header>) {
    if headers.iter().any(|h| is_position(&h.key)) {
        headers.retain(|h| !is_position(&h.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str, value: &str) -> Header {
        Header {
            key: key.into(),
            value: value.into(),
        }
    }

    fn event(headers: Vec<Header>) -> Event {
        Event {
            key: None,
            value: Vec::new(),
            headers,
            timestamp: None,
        }
    }

    fn keys(event: &Event) -> Vec<&str> {
        event.headers.iter().map(|h| h.key.as_str()).collect()
    }

    #[test]
    fn positions_leave_the_event_and_come_back_after_its_headers_to_every_user() {
        let batch = vec![
            event(vec![
                header("weft.source.topic", "t"),
                header("trace", "a"),
                header("weft.source.offset", "7"),
            ]),
            event(vec![header("trace", "b")]),
            event(vec![header("weft.source.offset", "9")]),
        ];
        let (positions, traced) = Positions::hold(batch);
        assert_eq!(keys(&traced.items[0]), ["trace"]);
        assert_eq!(keys(&traced.items[1]), ["trace"]);
        assert!(traced.items[2].headers.is_empty());

        // Input 0 fans out to two outputs and one dead letter; input 2 is filtered out.
        let mut out = Traced::with_capacity(3);
        out.push(0, event(vec![header("new", "x")]));
        out.push(0, event(Vec::new()));
        out.push(1, traced.items[1].clone());
        let mut dead = Traced::with_capacity(1);
        dead.push(
            0,
            DeadLetter {
                event: event(Vec::new()),
                stage: Some(0),
                processor: "p@1.0.0".into(),
                reason: "no".into(),
                schema: None,
            },
        );
        let (out, dead) = positions.restore(out, dead);
        assert_eq!(
            keys(&out[0]),
            ["new", "weft.source.topic", "weft.source.offset"]
        );
        assert_eq!(keys(&out[1]), ["weft.source.topic", "weft.source.offset"]);
        assert_eq!(keys(&out[2]), ["trace"]);
        assert_eq!(
            keys(&dead[0].event),
            ["weft.source.topic", "weft.source.offset"]
        );
        assert_eq!(dead[0].event.headers[1].value, b"7");
    }

    proptest::proptest! {
        /// Whatever the headers' order and however the chain fans events out or
        /// dead-letters them, each output and dead letter ends with exactly its input's
        /// positions, in their order, after its own headers, and no stage saw one.
        #[test]
        fn every_user_gets_exactly_its_inputs_positions(
            batch in proptest::collection::vec(
                proptest::collection::vec(proptest::bool::ANY, 0..6), 0..8),
            uses in proptest::collection::vec((0usize..3, 0usize..2), 8),
        ) {
            let events = batch
                .iter()
                .enumerate()
                .map(|(i, kinds)| {
                    event(kinds.iter().enumerate().map(|(j, &position)| {
                        let key = if position { format!("weft.source.{j}") } else { format!("h{j}") };
                        header(&key, &i.to_string())
                    }).collect())
                })
                .collect();
            let (positions, mut traced) = Positions::hold(events);
            let mut out = Traced::default();
            let mut dead = Traced::default();
            for ((event, origin), &(outputs, letters)) in traced.drain().zip(&uses) {
                proptest::prop_assert!(event.headers.iter().all(|h| !is_position(&h.key)));
                for _ in 0..outputs {
                    out.push(origin, event.clone());
                }
                for _ in 0..letters {
                    let letter = DeadLetter {
                        event: event.clone(),
                        stage: Some(0),
                        processor: "p@1.0.0".into(),
                        reason: "no".into(),
                        schema: None,
                    };
                    dead.push(origin, letter);
                }
            }
            let origins: Vec<u32> = out.origins.iter().chain(&dead.origins).copied().collect();
            let (out, dead) = positions.restore(out, dead);
            let restored = out.iter().chain(dead.iter().map(|d| &d.event));
            for (event, origin) in restored.zip(origins) {
                let kinds = &batch[origin as usize];
                let own = kinds.iter().enumerate().filter(|(_, p)| !**p).map(|(j, _)| format!("h{j}"));
                let held = kinds.iter().enumerate().filter(|(_, p)| **p).map(|(j, _)| format!("weft.source.{j}"));
                let expected: Vec<String> = own.chain(held).collect();
                proptest::prop_assert_eq!(keys(event), expected);
                let origin = origin.to_string();
                proptest::prop_assert!(event.headers.iter().all(|h| h.value == origin.as_bytes()));
            }
        }
    }

    #[test]
    fn a_forged_position_is_dropped_and_other_headers_stay_in_order() {
        let mut headers = vec![
            header("a", "1"),
            header("weft.source.offset", "0"),
            header("b", "2"),
        ];
        drop_forged(&mut headers);
        let kept: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_slice()))
            .collect();
        assert_eq!(kept, [("a", b"1".as_slice()), ("b", b"2".as_slice())]);
    }
}
