//! Every published event accounted for, per subscriber: delivered once and in order, or
//! inside a gap the subscriber was told about — anything else is a failure.

use std::collections::{HashMap, HashSet};
use std::fmt;

use realtime_core::Position;

/// What a subscriber's stream carried, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Event number `seq` of channel `channel` (an index into the soak's channels).
    Event { channel: usize, seq: u64 },
    /// A gap on `channel`: events up to `head` may be missing.
    Gap { channel: usize, head: String },
}

/// One subscriber's account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) delivered: u64,
    pub(crate) gaps: u64,
    /// Missing, and inside a gap the subscriber was told about.
    pub(crate) in_gap: u64,
    /// Missing without a gap covering it: silent loss.
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    /// Delivered after a later event of its channel.
    pub(crate) reordered: u64,
    /// Channels whose last event never arrived.
    pub(crate) unfinished: u64,
}

impl Tally {
    pub(crate) fn failed(&self) -> bool {
        self.lost + self.duplicates + self.reordered + self.unfinished > 0
    }

    pub(crate) fn add(&mut self, other: &Tally) {
        self.delivered += other.delivered;
        self.gaps += other.gaps;
        self.in_gap += other.in_gap;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.unfinished += other.unfinished;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9} {:>5} {:>7} {:>5} {:>4} {:>8} {:>10}",
            self.delivered,
            self.gaps,
            self.in_gap,
            self.lost,
            self.duplicates,
            self.reordered,
            self.unfinished
        )
    }
}

/// The header matching [`Tally`]'s `Display`.
pub(crate) const HEADER: &str = "delivered  gaps  in-gap  lost  dup  reorder  unfinished";

/// Accounts `seen` against `published` (per channel, the id of event `seq` at `seq - 1`)
/// for a subscriber of `channels`, there from the first event of each.
pub(crate) fn account(seen: &[Seen], channels: &[usize], published: &[Vec<String>]) -> Tally {
    let mut tally = Tally::default();
    for &channel in channels {
        let ids = &published[channel];
        let epochs = epoch_order(ids);
        // The next event expected, and the gaps heard since the last delivered one.
        let mut next = 1u64;
        let mut heads: Vec<&str> = Vec::new();
        let mut delivered = HashSet::new();
        for item in seen {
            match item {
                Seen::Gap { channel: c, head } if *c == channel => {
                    tally.gaps += 1;
                    heads.push(head);
                }
                Seen::Event { channel: c, seq } if *c == channel => {
                    if !delivered.insert(*seq) {
                        tally.duplicates += 1;
                        continue;
                    }
                    if *seq < next {
                        tally.reordered += 1;
                        continue;
                    }
                    for missing in next..*seq {
                        let id = ids.get(missing as usize - 1).map_or("", String::as_str);
                        if heads.iter().any(|head| covers(head, id, &epochs)) {
                            tally.in_gap += 1;
                        } else {
                            tally.lost += 1;
                        }
                    }
                    tally.delivered += 1;
                    next = seq + 1;
                    heads.clear();
                }
                _ => {}
            }
        }
        if next <= ids.len() as u64 {
            tally.unfinished += 1;
        }
    }
    tally
}

/// The histories (epochs) of a channel in the order its events were stored in them.
fn epoch_order(ids: &[String]) -> HashMap<u64, usize> {
    let mut order = HashMap::new();
    for id in ids {
        if let Ok(position) = Position::parse(id) {
            let next = order.len();
            order.entry(position.epoch.0).or_insert(next);
        }
    }
    order
}

/// Whether a gap with `head` covers the event with `id`: the same history, at or before
/// the head — or an older history than the head's (the store lost the one `id` was in; a
/// head in a history no event was stored in yet is the newest).
fn covers(head: &str, id: &str, epochs: &HashMap<u64, usize>) -> bool {
    let (Ok(head), Ok(id)) = (Position::parse(head), Position::parse(id)) else {
        return false;
    };
    if head.epoch == id.epoch {
        return id.offset <= head.offset;
    }
    let rank = |epoch: u64| epochs.get(&epoch).copied().unwrap_or(usize::MAX);
    rank(id.epoch.0) < rank(head.epoch.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<Vec<String>> {
        vec![(1..=n).map(|i| format!("a-{i}")).collect()]
    }

    fn events(seqs: &[u64]) -> Vec<Seen> {
        seqs.iter()
            .map(|&seq| Seen::Event { channel: 0, seq })
            .collect()
    }

    #[test]
    fn every_event_once_in_order_is_clean() {
        let tally = account(&events(&[1, 2, 3]), &[0], &ids(3));
        assert_eq!(tally.delivered, 3);
        assert!(!tally.failed());
    }

    #[test]
    fn a_hole_without_a_gap_is_silent_loss() {
        let tally = account(&events(&[1, 3]), &[0], &ids(3));
        assert_eq!(tally.lost, 1);
        assert!(tally.failed());
    }

    #[test]
    fn a_hole_inside_a_gap_is_accounted() {
        let mut seen = events(&[1]);
        seen.push(Seen::Gap {
            channel: 0,
            head: "a-3".into(),
        });
        seen.extend(events(&[4]));
        let tally = account(&seen, &[0], &ids(4));
        assert_eq!((tally.in_gap, tally.lost), (2, 0));
        assert!(!tally.failed());
    }

    #[test]
    fn a_hole_past_the_gaps_head_is_loss() {
        let mut seen = events(&[1]);
        seen.push(Seen::Gap {
            channel: 0,
            head: "a-2".into(),
        });
        seen.extend(events(&[4]));
        let tally = account(&seen, &[0], &ids(4));
        assert_eq!((tally.in_gap, tally.lost), (1, 1));
    }

    #[test]
    fn another_history_covers_what_the_old_one_held() {
        let mut seen = events(&[1]);
        seen.push(Seen::Gap {
            channel: 0,
            head: "b-0".into(),
        });
        seen.extend(events(&[3]));
        let tally = account(&seen, &[0], &ids(3));
        assert_eq!((tally.in_gap, tally.lost), (1, 0));
    }

    #[test]
    fn a_gap_in_an_older_history_does_not_cover_a_newer_one() {
        // Events 1-2 in history a, 3-4 in history b; the gap's head is in a.
        let published = vec![vec!["a-1".into(), "a-2".into(), "b-1".into(), "b-2".into()]];
        let mut seen = events(&[1]);
        seen.push(Seen::Gap {
            channel: 0,
            head: "a-2".into(),
        });
        seen.extend(events(&[4]));
        let tally = account(&seen, &[0], &published);
        assert_eq!((tally.in_gap, tally.lost), (1, 1));
    }

    #[test]
    fn repeats_reorders_and_a_missing_end_fail() {
        assert_eq!(account(&events(&[1, 2, 2]), &[0], &ids(2)).duplicates, 1);
        let tally = account(&events(&[1, 3, 2]), &[0], &ids(3));
        assert_eq!((tally.lost, tally.reordered), (1, 1));
        assert_eq!(account(&events(&[1]), &[0], &ids(2)).unfinished, 1);
    }
}
