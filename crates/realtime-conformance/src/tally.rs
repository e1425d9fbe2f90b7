//! Counting what a subscriber received against what was stored, for fault tests.
//!
//! A fault test publishes through one instance while subscribers on another receive; it
//! records every stored event's position with [`Tally::published`] and every message a
//! subscriber received with [`Tally::received`], then asks for the [`Counts`]. The promise
//! under any fault is `lost == 0 && duplicated == 0 && reordered == 0`: every stored event
//! arrives once, in order, or a gap signal covers it.

use std::collections::HashMap;
use std::fmt;

use realtime_core::{Epoch, Message, Position};

/// What one subscriber received, against what was stored.
#[derive(Debug, Default)]
pub struct Tally {
    published: Vec<Position>,
    received: Vec<Received>,
}

#[derive(Debug)]
enum Received {
    Event(Position),
    Gap(Position),
}

/// The verdict of a [`Tally`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events stored (publishes that returned a position).
    pub published: u64,
    /// Stored events received at least once.
    pub delivered: u64,
    /// Extra copies of events already received.
    pub duplicated: u64,
    /// Events received after a later event of the same history, with no gap between.
    pub reordered: u64,
    /// Stored events not received, but covered by a gap signal (a gap whose head is at or
    /// after them in their history, or in another history).
    pub covered: u64,
    /// Gap signals received.
    pub gaps: u64,
    /// Stored events neither received nor covered by a gap: silent loss.
    pub lost: u64,
}

impl Counts {
    /// Whether the promise held: nothing lost silently, nothing twice, nothing out of order.
    pub fn is_exact_or_honest(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.reordered == 0
    }

    /// One line for `cargo xtask faults` to collect: `fault-row: <scenario> | k=v …`.
    pub fn row(&self, scenario: &str) -> String {
        format!("fault-row: {scenario} | {self}")
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "published={} delivered={} duplicated={} reordered={} gap_covered={} gaps={} lost={}",
            self.published,
            self.delivered,
            self.duplicated,
            self.reordered,
            self.covered,
            self.gaps,
            self.lost
        )
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Tally::default()
    }

    /// Records an event the store accepted.
    pub fn published(&mut self, position: Position) {
        self.published.push(position);
    }

    /// Records a message one subscriber received, in arrival order.
    pub fn received(&mut self, message: &Message) {
        self.received.push(match message {
            Message::Gap(gap) => Received::Gap(gap.head),
            Message::Event(event) => Received::Event(event.id),
            // `Message` may grow; a new kind carries no position this tally can check.
            #[allow(unreachable_patterns)]
            _ => return,
        });
    }

    /// Whether every published event was received or covered by a gap already.
    pub fn is_settled(&self) -> bool {
        let counts = self.counts();
        counts.delivered + counts.covered == counts.published
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        // Histories in the order their first event was stored: a gap into a later history
        // covers what was lost of the earlier ones.
        let mut rank: HashMap<Epoch, usize> = HashMap::new();
        for position in &self.published {
            let next = rank.len();
            rank.entry(position.epoch).or_insert(next);
        }
        let mut seen: HashMap<Position, u64> = HashMap::new();
        let mut counts = Counts {
            published: self.published.len() as u64,
            ..Counts::default()
        };
        let mut last: Option<Position> = None;
        // Each gap's head, and the rank of the history it moved to (a head in a history no
        // event was stored in yet ranks as the next event received after it, or past all).
        let mut gaps: Vec<(Position, usize)> = Vec::new();
        for (index, message) in self.received.iter().enumerate() {
            match *message {
                Received::Gap(head) => {
                    counts.gaps += 1;
                    let moved_to = rank.get(&head.epoch).copied().unwrap_or_else(|| {
                        self.received[index + 1..]
                            .iter()
                            .find_map(|m| match m {
                                Received::Event(p) => rank.get(&p.epoch).copied(),
                                Received::Gap(_) => None,
                            })
                            .unwrap_or(usize::MAX)
                    });
                    gaps.push((head, moved_to));
                    last = None;
                }
                Received::Event(position) => {
                    let copies = seen.entry(position).or_default();
                    *copies += 1;
                    if *copies > 1 {
                        counts.duplicated += 1;
                        continue;
                    }
                    if let Some(previous) = last
                        && previous.epoch == position.epoch
                        && position.offset <= previous.offset
                    {
                        counts.reordered += 1;
                    }
                    last = Some(position);
                }
            }
        }
        for position in &self.published {
            let own = rank[&position.epoch];
            if seen.contains_key(position) {
                counts.delivered += 1;
            } else if gaps.iter().any(|(head, moved_to)| {
                if head.epoch == position.epoch {
                    head.offset >= position.offset
                } else {
                    *moved_to > own
                }
            }) {
                counts.covered += 1;
            } else {
                counts.lost += 1;
            }
        }
        counts
    }
}

/// What one subscriber received, against what was published, by payload: for
/// [`History::PerInstance`](realtime_core::History::PerInstance) mode, where a receiving
/// instance delivers under positions of its own. One publisher publishes in sequence; each
/// payload is unique.
#[derive(Debug, Default)]
pub struct Sequence {
    published: HashMap<bytes::Bytes, usize>,
    received: Vec<Option<usize>>,
}

impl Sequence {
    /// An empty sequence tally.
    pub fn new() -> Self {
        Sequence::default()
    }

    /// Records the next published payload.
    pub fn published(&mut self, data: bytes::Bytes) {
        let next = self.published.len();
        self.published.entry(data).or_insert(next);
    }

    /// Records a message one subscriber received, in arrival order (an event whose payload
    /// was not published is ignored).
    pub fn received(&mut self, message: &Message) {
        match message {
            Message::Gap(_) => self.received.push(None),
            Message::Event(event) => {
                if let Some(&index) = self.published.get(&event.event().data) {
                    self.received.push(Some(index));
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Whether every published payload was received or covered by a gap already.
    pub fn is_settled(&self) -> bool {
        let counts = self.counts();
        counts.delivered + counts.covered == counts.published
    }

    /// The counts so far. A payload not received is covered by a gap received after every
    /// event published before it that arrived, and before an event published after it.
    pub fn counts(&self) -> Counts {
        let n = self.published.len();
        let mut copies = vec![0u64; n];
        let mut counts = Counts {
            published: n as u64,
            ..Counts::default()
        };
        // For each gap: the highest index received before it, the lowest received after.
        let mut gaps: Vec<(Option<usize>, Option<usize>)> = Vec::new();
        let mut highest: Option<usize> = None;
        let mut previous: Option<usize> = None;
        for (at, message) in self.received.iter().enumerate() {
            match *message {
                None => {
                    counts.gaps += 1;
                    let next = self.received[at + 1..].iter().flatten().copied().min();
                    gaps.push((highest, next));
                    previous = None;
                }
                Some(index) => {
                    copies[index] += 1;
                    if copies[index] > 1 {
                        counts.duplicated += 1;
                        continue;
                    }
                    if previous.is_some_and(|p| index < p) {
                        counts.reordered += 1;
                    }
                    previous = Some(index);
                    highest = highest.max(Some(index));
                }
            }
        }
        for (index, copies) in copies.iter().enumerate() {
            if *copies > 0 {
                counts.delivered += 1;
            } else if gaps.iter().any(|(before, after)| {
                // A gap with nothing after it yet covers nothing: the events may still come.
                before.is_none_or(|b| b < index) && after.is_some_and(|a| a > index)
            }) {
                counts.covered += 1;
            } else {
                counts.lost += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use realtime_core::{Event, Gap, GapReason, NewEvent, SharedEvent};

    use super::*;

    fn event(epoch: u64, offset: u64) -> Message {
        let event: Event = NewEvent::new("c", "x").into_event(Position::new(Epoch(epoch), offset));
        Message::Event(SharedEvent::new(event))
    }

    fn gap(epoch: u64, offset: u64) -> Message {
        Message::Gap(Gap {
            channel: "c".into(),
            reason: GapReason::Trimmed,
            head: Position::new(Epoch(epoch), offset),
        })
    }

    #[test]
    fn counts_loss_duplicates_order_and_gaps() {
        let mut tally = Tally::new();
        for offset in 1..=6 {
            tally.published(Position::new(Epoch(1), offset));
        }
        tally.published(Position::new(Epoch(2), 1));
        for message in [
            event(1, 1),
            event(1, 3),
            event(1, 2),
            event(1, 3),
            gap(1, 4),
        ] {
            tally.received(&message);
        }
        let counts = tally.counts();
        assert_eq!(
            (counts.delivered, counts.duplicated, counts.reordered),
            (3, 1, 1)
        );
        assert_eq!((counts.covered, counts.gaps, counts.lost), (1, 1, 3));
        assert!(!counts.is_exact_or_honest() && !tally.is_settled());
        tally.received(&gap(2, 0));
        assert_eq!(
            tally.counts().lost,
            1,
            "a gap into the next history covers the old one"
        );
        tally.received(&event(2, 1));
        assert_eq!(tally.counts().lost, 0);
        let mut lost_history = Tally::new();
        lost_history.published(Position::new(Epoch(1), 1));
        lost_history.received(&gap(9, 0));
        assert_eq!(
            lost_history.counts().covered,
            1,
            "a gap into an unseen history"
        );
    }

    #[test]
    fn sequences_count_by_payload() {
        let mut sequence = Sequence::new();
        for i in 0..6 {
            sequence.published(bytes::Bytes::from(format!("{i}")));
        }
        let local = |i: usize| {
            let event = NewEvent::new("c", format!("{i}")).into_event(Position::new(Epoch(77), 1));
            Message::Event(SharedEvent::new(event))
        };
        for message in [local(0), local(1), local(1), gap(0, 0), local(3), local(2)] {
            sequence.received(&message);
        }
        let counts = sequence.counts();
        assert_eq!(
            (
                counts.delivered,
                counts.duplicated,
                counts.reordered,
                counts.gaps
            ),
            (4, 1, 1, 1)
        );
        assert_eq!((counts.covered, counts.lost), (0, 2), "4 and 5 are neither");
        sequence.received(&gap(0, 0));
        assert_eq!(
            (sequence.counts().covered, sequence.counts().lost),
            (0, 2),
            "not yet: they may still come"
        );
        sequence.received(&local(5));
        assert_eq!((sequence.counts().covered, sequence.counts().lost), (1, 0));
    }
}
