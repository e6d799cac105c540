//! Which offsets a Kafka source may commit: the bookkeeping behind its at-least-once
//! guarantee, apart from librdkafka so it can be tested without a broker.
//!
//! An offset moves through four states per partition: *taken* (its message is in the batch
//! being built: [`Taken`], owned by the polling code), *written* (the run loop polled again,
//! so that batch was handed to the sinks, which may still be delivering it:
//! [`Offsets::written`], one entry per poll's ticket), *acknowledged* (the sinks flushed the
//! batch: [`Offsets::acked`]) and *committed* (the broker confirmed it). Only acknowledged
//! offsets are ever committed. A revoked partition leaves all four: its taken events leave
//! the batch (none is written yet); its written offsets become acknowledged only if the
//! sinks' delivery gates confirm every delivery; its acknowledged offsets are committed on
//! revoke.

use std::collections::HashMap;

use crate::io::stream::Ticket;

/// A topic's partition, as the broker names it.
pub(super) type Partition = (String, i32);

/// Offsets the rebalance callback and the run loop share: one past the last acknowledged
/// message of each partition, what the broker confirmed, and what was revoked since the
/// polling code last looked.
#[derive(Debug, Default)]
pub(super) struct Offsets {
    /// Per poll written and not acknowledged yet, in ticket order.
    written: Vec<(Ticket, HashMap<Partition, i64>)>,
    acked: HashMap<Partition, i64>,
    committed: HashMap<Partition, i64>,
    revoked: Vec<Partition>,
}

impl Offsets {
    /// Acknowledged offsets the broker has not confirmed, on `only` these partitions (every
    /// one when `None`), sorted (for logs and tests).
    pub fn uncommitted(&self, only: Option<&[Partition]>) -> Vec<(Partition, i64)> {
        let mut due: Vec<_> = self
            .acked
            .iter()
            .filter(|(p, _)| only.is_none_or(|only| only.contains(p)))
            .filter(|(p, offset)| self.committed.get(*p).is_none_or(|c| c < *offset))
            .map(|(p, offset)| (p.clone(), *offset))
            .collect();
        due.sort();
        due
    }

    /// The broker confirmed `offset` on `partition`. Ignored for a partition this source
    /// no longer holds: a late confirmation must not outlive its revoke.
    pub fn confirm(&mut self, partition: &Partition, offset: i64) {
        if self.acked.contains_key(partition) {
            let slot = self.committed.entry(partition.clone()).or_insert(offset);
            *slot = (*slot).max(offset);
        }
    }

    /// What poll `ticket` took was handed to the sinks: one past its last offset per
    /// partition.
    pub fn written(&mut self, ticket: Ticket, next: HashMap<Partition, i64>) {
        if !next.is_empty() {
            self.written.push((ticket, next));
        }
    }

    /// The sinks flushed everything polls up to `through` handed over.
    pub fn acknowledge(&mut self, through: Ticket) {
        let done = self.written.partition_point(|(t, _)| *t <= through);
        for (_, next) in self.written.drain(..done) {
            for (partition, offset) in next {
                raise(&mut self.acked, partition, offset);
            }
        }
    }

    /// Whether anything written but not acknowledged comes from `partitions`.
    pub fn written_on(&self, partitions: &[Partition]) -> bool {
        self.written
            .iter()
            .any(|(_, next)| next.keys().any(|p| partitions.contains(p)))
    }

    /// The sinks delivered everything written (their delivery gates said so): what was
    /// written from `partitions` is acknowledged, ahead of its batch's flush.
    pub fn acknowledge_delivered(&mut self, partitions: &[Partition]) {
        for (_, next) in &mut self.written {
            for p in partitions {
                if let Some(offset) = next.remove(p) {
                    raise(&mut self.acked, p.clone(), offset);
                }
            }
        }
    }

    /// Forgets revoked partitions (after their acknowledged offsets were committed) and
    /// notes them for the polling code, which drops their events from the batch it builds.
    /// Their written offsets go too: acknowledging that batch later must not make them
    /// committable again.
    pub fn revoke(&mut self, partitions: &[Partition]) {
        for p in partitions {
            self.acked.remove(p);
            self.committed.remove(p);
        }
        for (_, next) in &mut self.written {
            next.retain(|p, _| !partitions.contains(p));
        }
        self.revoked.extend_from_slice(partitions);
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&mut self) -> Vec<Partition> {
        std::mem::take(&mut self.revoked)
    }
}

/// Where an item of the batch being built came from: a topic (index into [`Taken`]'s
/// topics) and a partition.
type Origin = (u32, i32);

/// Never lowers an offset: polls of one partition hand over ascending offsets.
fn raise(offsets: &mut HashMap<Partition, i64>, partition: Partition, offset: i64) {
    let slot = offsets.entry(partition).or_insert(offset);
    *slot = (*slot).max(offset);
}

/// What the current poll took: one past the last offset per partition, and the partition of
/// each item of the batch being built, so the items of a revoked partition can leave it.
#[derive(Debug, Default)]
pub(super) struct Taken {
    topics: Vec<String>,
    next: HashMap<Origin, i64>,
    /// Partition of each event, then of each dead letter, appended by this poll.
    events: Vec<Origin>,
    dead: Vec<Origin>,
}

/// Where a poll started appending to the batch: its lengths before the poll.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    pub events: usize,
    pub dead: usize,
}

impl Taken {
    /// A new poll appends after `start`; origins of earlier polls are not needed any more
    /// (their items left the batch with the step that handled them).
    pub fn begin(&mut self) {
        self.events.clear();
        self.dead.clear();
    }

    /// Records a message taken as an event (or, `dead`, as a dead letter) at `offset`.
    pub fn take(&mut self, topic: &str, partition: i32, offset: i64, dead: bool) {
        let index = match self.topics.iter().position(|t| t == topic) {
            Some(i) => i,
            None => {
                self.topics.push(topic.to_string());
                self.topics.len() - 1
            }
        };
        let origin = (index as u32, partition);
        let next = self.next.entry(origin).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        if dead {
            self.dead.push(origin);
        } else {
            self.events.push(origin);
        }
    }

    /// Forgets what was taken from `revoked` partitions and removes their items from the
    /// batch's `events` (with `positions`, one beside each event) and `dead` past `start`
    /// (kept in step with this poll's takes). Returns how many items left.
    pub fn drop_revoked<E, P, D>(
        &mut self,
        revoked: &[Partition],
        start: Start,
        events: &mut Vec<E>,
        positions: &mut Vec<P>,
        dead: &mut Vec<D>,
    ) -> usize {
        let gone: Vec<Origin> = revoked
            .iter()
            .filter_map(|(topic, partition)| {
                let index = self.topics.iter().position(|t| t == topic)?;
                Some((index as u32, *partition))
            })
            .collect();
        if gone.is_empty() {
            return 0;
        }
        self.next.retain(|origin, _| !gone.contains(origin));
        let before = events.len() + dead.len();
        retain_from(events, start.events, &self.events, &gone);
        retain_from(positions, start.events, &self.events, &gone);
        self.events.retain(|o| !gone.contains(o));
        retain_from(dead, start.dead, &self.dead, &gone);
        self.dead.retain(|o| !gone.contains(o));
        before - events.len() - dead.len()
    }

    /// What was taken was handed to the sinks as poll `ticket`: it is written, and becomes
    /// committable once that ticket is acknowledged.
    pub fn hand_over(&mut self, ticket: Ticket, offsets: &mut Offsets) {
        let next = self
            .next
            .drain()
            .map(|((index, partition), next)| {
                ((self.topics[index as usize].clone(), partition), next)
            })
            .collect();
        offsets.written(ticket, next);
    }

    /// The poll failed: what it took is never written, so it is never acknowledged.
    pub fn discard(&mut self) {
        self.next.clear();
    }
}

/// Keeps `items[..start]` and those of `items[start..]` whose origin is not `gone`;
/// `origins` lists the origin of each of `items[start..]` (or of more: the positions beside
/// a batch's events may stop short of them).
fn retain_from<T>(items: &mut Vec<T>, start: usize, origins: &[Origin], gone: &[Origin]) {
    let mut index = 0;
    items.retain(|_| {
        let keep = index < start || !gone.contains(&origins[index - start]);
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(topic: &str, partition: i32) -> Partition {
        (topic.to_string(), partition)
    }

    /// What was taken is written and flushed at once (a run loop without a batch in flight).
    fn deliver(taken: &mut Taken, offsets: &mut Offsets) {
        taken.hand_over(Ticket(1), offsets);
        offsets.acknowledge(Ticket(1));
    }

    #[test]
    fn the_batch_in_flight_is_not_committable_until_its_ticket_is_acknowledged() {
        let mut offsets = Offsets::default();
        let mut taken = Taken::default();
        // Poll 1 takes 0..3 of t/0; poll 2 hands it over (written) and takes 3..5.
        for offset in 0..3 {
            taken.take("t", 0, offset, false);
        }
        taken.hand_over(Ticket(1), &mut offsets);
        for offset in 3..5 {
            taken.take("t", 0, offset, false);
        }
        assert!(offsets.uncommitted(None).is_empty(), "written, not flushed");
        assert!(offsets.written_on(&[p("t", 0)]));
        assert!(!offsets.written_on(&[p("t", 1)]));
        offsets.acknowledge(Ticket(1));
        assert_eq!(offsets.uncommitted(None), vec![(p("t", 0), 3)]);
        // Poll 3 hands poll 2 over; acknowledging 1 again changes nothing.
        taken.hand_over(Ticket(2), &mut offsets);
        offsets.acknowledge(Ticket(1));
        assert_eq!(offsets.uncommitted(None), vec![(p("t", 0), 3)]);
        offsets.acknowledge(Ticket(2));
        assert_eq!(offsets.uncommitted(None), vec![(p("t", 0), 5)]);
    }

    #[test]
    fn a_revoke_acknowledges_the_written_batch_only_when_its_deliveries_are_confirmed() {
        let mut offsets = Offsets::default();
        let mut taken = Taken::default();
        taken.take("t", 0, 7, false);
        taken.take("t", 1, 9, false);
        taken.hand_over(Ticket(1), &mut offsets);
        // Delivered: t/0's written offset is committable before the batch is flushed.
        offsets.acknowledge_delivered(&[p("t", 0)]);
        assert_eq!(
            offsets.uncommitted(Some(&[p("t", 0)])),
            vec![(p("t", 0), 8)]
        );
        offsets.revoke(&[p("t", 0)]);
        // Not confirmed for t/1: revoked without becoming committable, and the run loop's
        // later acknowledgement of the batch does not bring it back.
        offsets.revoke(&[p("t", 1)]);
        offsets.acknowledge(Ticket(1));
        assert!(offsets.uncommitted(None).is_empty());
        assert!(!offsets.written_on(&[p("t", 0), p("t", 1)]));
    }

    proptest! {
        /// Whatever the partitions each poll takes from and wherever revokes land (with the
        /// deliveries confirmed or not), nothing becomes committable past what was
        /// acknowledged or confirmed delivered, nothing of a partition revoked since, and,
        /// with no revoke at all, exactly what the acknowledged polls took.
        #[test]
        fn committable_offsets_follow_the_acknowledged_tickets(
            polls in proptest::collection::vec(
                (proptest::collection::vec(0i32..3, 0..8), proptest::option::of((0i32..3, any::<bool>()))),
                1..12,
            ),
        ) {
            let mut offsets = Offsets::default();
            let mut taken = Taken::default();
            let mut next_offset = [0i64; 3];
            // Per partition: one past the highest offset allowed to be committable.
            let mut allowed: [Option<i64>; 3] = [None; 3];
            // Per ticket, per partition: one past the highest offset it took (after revokes).
            let mut by_ticket: Vec<[Option<i64>; 3]> = Vec::new();
            let mut revoked_ever = false;
            for (k, (takes, revoke)) in polls.iter().enumerate() {
                let ticket = Ticket(k as u64 + 1);
                // Polling again: the last poll's batch was written.
                taken.hand_over(Ticket(k as u64), &mut offsets);
                taken.begin();
                let start = Start { events: 0, dead: 0 };
                let mut events: Vec<i32> = Vec::new();
                let mut took = [None; 3];
                if let Some((part, delivered)) = revoke {
                    revoked_ever = true;
                    let gone = [p("t", *part)];
                    if *delivered {
                        for earlier in &by_ticket {
                            if let Some(o) = earlier[*part as usize] {
                                allowed[*part as usize] = Some(allowed[*part as usize].unwrap_or(0).max(o));
                            }
                        }
                        offsets.acknowledge_delivered(&gone);
                    }
                    prop_assert!(offsets.uncommitted(None).iter().all(|((_, q), o)| allowed[*q as usize].is_some_and(|a| *o <= a)));
                    offsets.revoke(&gone);
                    taken.drop_revoked(&gone, start, &mut events, &mut Vec::<i32>::new(), &mut Vec::<i32>::new());
                    allowed[*part as usize] = None;
                    for earlier in &mut by_ticket {
                        earlier[*part as usize] = None;
                    }
                }
                for part in takes {
                    let offset = next_offset[*part as usize];
                    next_offset[*part as usize] += 1;
                    taken.take("t", *part, offset, false);
                    events.push(*part);
                    took[*part as usize] = Some(offset + 1);
                }
                by_ticket.push(took);
                // The run loop acknowledges the batch before this one.
                offsets.acknowledge(Ticket(ticket.0 - 1));
                if k >= 1 {
                    for part in 0..3 {
                        if let Some(o) = by_ticket[k - 1][part] {
                            allowed[part] = Some(allowed[part].unwrap_or(0).max(o));
                        }
                    }
                }
                for ((_, part), offset) in offsets.uncommitted(None) {
                    let limit = allowed[part as usize];
                    prop_assert!(limit.is_some_and(|a| offset <= a), "t/{part} committable at {offset}, allowed {limit:?}");
                    if !revoked_ever {
                        prop_assert_eq!(Some(offset), limit);
                    }
                }
            }
        }
    }

    #[test]
    fn only_acknowledged_offsets_become_committable_and_confirmed_ones_are_not_repeated() {
        let mut offsets = Offsets::default();
        let mut taken = Taken::default();
        taken.take("t", 0, 10, false);
        taken.take("t", 0, 11, true);
        taken.take("t", 1, 5, false);
        assert!(offsets.uncommitted(None).is_empty(), "nothing acknowledged");
        deliver(&mut taken, &mut offsets);
        assert_eq!(
            offsets.uncommitted(None),
            vec![(p("t", 0), 12), (p("t", 1), 6)]
        );
        offsets.confirm(&p("t", 0), 12);
        assert_eq!(offsets.uncommitted(None), vec![(p("t", 1), 6)]);
        assert_eq!(offsets.uncommitted(Some(&[p("t", 0)])), vec![]);
        // Taken after the acknowledgement: not committable until acknowledged in turn.
        taken.take("t", 0, 12, false);
        assert_eq!(offsets.uncommitted(Some(&[p("t", 0)])), vec![]);
    }

    #[test]
    fn a_late_confirmation_for_a_revoked_partition_is_ignored() {
        let mut offsets = Offsets::default();
        let mut taken = Taken::default();
        taken.take("t", 0, 3, false);
        deliver(&mut taken, &mut offsets);
        offsets.revoke(&[p("t", 0)]);
        offsets.confirm(&p("t", 0), 4);
        assert_eq!(offsets.take_revoked(), vec![p("t", 0)]);
        assert!(offsets.take_revoked().is_empty());
        // Assigned again and read from the committed offset 4: committable as usual.
        taken.take("t", 0, 4, false);
        deliver(&mut taken, &mut offsets);
        assert_eq!(offsets.uncommitted(None), vec![(p("t", 0), 5)]);
    }

    proptest! {
        /// Whatever the interleaving of partitions, a revoke removes exactly the items of the
        /// revoked partitions taken by this poll, keeps the rest in order, and leaves nothing
        /// of them to acknowledge.
        #[test]
        fn a_revoke_drops_exactly_the_revoked_partitions_items(
            before in 0usize..4,
            takes in proptest::collection::vec((0u8..2, 0i32..4, any::<bool>()), 0..60),
            revoked in proptest::collection::btree_set((0u8..3, 0i32..4), 0..5),
        ) {
            let topic = |t: u8| format!("topic{t}");
            let mut taken = Taken::default();
            taken.begin();
            // Items of an earlier poll stay whatever their partition.
            let mut events: Vec<(u8, i32, i64)> = (0..before).map(|i| (0, 0, -(i as i64) - 1)).collect();
            let mut dead: Vec<(u8, i32, i64)> = Vec::new();
            let start = Start { events: events.len(), dead: 0 };
            for (offset, (t, partition, is_dead)) in takes.iter().enumerate() {
                taken.take(&topic(*t), *partition, offset as i64, *is_dead);
                let item = (*t, *partition, offset as i64);
                if *is_dead { dead.push(item) } else { events.push(item) }
            }
            let revoked: Vec<Partition> = revoked.iter().map(|(t, part)| (topic(*t), *part)).collect();
            let is_revoked = |t: u8, part: i32| revoked.contains(&(topic(t), part));
            let expect_events: Vec<_> = events.iter().enumerate()
                .filter(|(i, (t, part, _))| *i < before || !is_revoked(*t, *part))
                .map(|(_, e)| *e).collect();
            let expect_dead: Vec<_> = dead.iter().filter(|(t, part, _)| !is_revoked(*t, *part)).copied().collect();
            let gone = taken.drop_revoked(&revoked, start, &mut events, &mut Vec::<()>::new(), &mut dead);
            prop_assert_eq!(&events, &expect_events);
            prop_assert_eq!(&dead, &expect_dead);
            prop_assert_eq!(gone, before + takes.len() - expect_events.len() - expect_dead.len());
            let mut offsets = Offsets::default();
            deliver(&mut taken, &mut offsets);
            for ((t, part), _) in offsets.uncommitted(None) {
                prop_assert!(!revoked.contains(&(t.clone(), part)), "{t}/{part} revoked yet acknowledged");
            }
            // A second revoke of the same partitions finds nothing more to drop.
            prop_assert_eq!(taken.drop_revoked(&revoked, start, &mut events, &mut Vec::<()>::new(), &mut dead), 0);
        }
    }
}
