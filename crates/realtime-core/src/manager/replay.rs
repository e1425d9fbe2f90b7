//! What a resuming client missed: an exact replay, or a gap and (optionally) the tail.

use std::sync::Arc;

use super::Inner;
use super::request::Replay;
use crate::error::Result;
use crate::event::Event;
use crate::gap::{Gap, GapReason};
use crate::metrics as m;
use crate::position::Position;
use crate::routing::Route;
use crate::shared::SharedEvent;

impl Inner {
    /// Reads what a client missed after `token`: exact, or a gap and (optionally) the tail.
    /// Returns the replay and the position live delivery continues after. `budget` is the
    /// payload bytes the client's join may still hold (shared by all its channels, so one
    /// connection with many channels holds `replay_max_bytes` in all, not per channel); what
    /// this replay keeps is taken from it. `started`: this join started listening to the
    /// channel.
    pub(super) async fn replay(
        &self,
        channel: &str,
        token: &str,
        route: &Route,
        budget: &mut usize,
        started: bool,
    ) -> Result<(Replay, Position)> {
        let limit = self.config.replay_limit;
        let name: Arc<str> = channel.into();
        // Per instance, a history this join just started holds nothing published before:
        // a resume from "the start" (`0-0`, a lost gap's head) cannot be exact — events
        // published while this instance did not listen would be skipped without a word.
        let unknowable = |after: Position| {
            started
                && self.config.history == crate::History::PerInstance
                && after == Position::start(crate::Epoch::NONE)
        };
        let mut read = match Position::parse(token) {
            Ok(after) if unknowable(after) => crate::store::ReadResult {
                events: Vec::new(),
                head: self.store.head(channel).await?,
                oldest: 0,
                gap: Some(GapReason::EpochChanged),
            },
            Ok(after) => self.store.read(channel, after, limit).await?,
            Err(_) => {
                let head = self.store.head(channel).await?;
                crate::store::ReadResult {
                    events: Vec::new(),
                    head,
                    oldest: 0,
                    gap: Some(GapReason::UnknownPosition),
                }
            }
        };
        let bytes = payload_bytes(&read.events);
        if read.gap.is_none() && bytes > *budget {
            // More than one connection may hold: the same answer as too many events.
            read.gap = Some(GapReason::Limit);
            read.events.clear();
        }
        let head = read.head;
        let Some(reason) = read.gap else {
            // What was read is charged (it fits: checked above), whatever the route keeps.
            *budget -= bytes;
            let events = accepted(route, read.events);
            return Ok((
                Replay {
                    channel: name,
                    events,
                    gap: None,
                },
                head,
            ));
        };
        metrics::counter!(m::GAPS, "reason" => reason.as_str()).increment(1);
        tracing::debug!(channel, %reason, %head, "replay gap");
        let gap = Gap {
            channel: name.clone(),
            reason,
            head,
        };
        let events = if self.config.replay_tail_after_gap {
            accepted(route, self.newest(channel, head, limit, budget).await?)
        } else {
            Vec::new()
        };
        Ok((
            Replay {
                channel: name,
                events,
                gap: Some(gap),
            },
            head,
        ))
    }
}

impl Inner {
    /// A new subscriber's backlog: the newest `count` retained events of `channel` its
    /// `route` accepts (those that fit `budget`, taken from it), and the position they end
    /// at (live events continue after it).
    pub(super) async fn backlog(
        &self,
        channel: &str,
        count: usize,
        route: &Route,
        budget: &mut usize,
    ) -> Result<(Replay, Position)> {
        let head = self.store.head(channel).await?;
        let events = accepted(route, self.newest(channel, head, count, budget).await?);
        Ok((
            Replay {
                channel: channel.into(),
                events,
                gap: None,
            },
            head,
        ))
    }

    /// The newest events of `channel` up to `head` (at most `count`, of `head`'s epoch,
    /// those that fit `budget`, which they are taken from), oldest first.
    async fn newest(
        &self,
        channel: &str,
        head: Position,
        count: usize,
        budget: &mut usize,
    ) -> Result<Vec<Event>> {
        if head.offset == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let start = Position::new(head.epoch, head.offset.saturating_sub(count as u64));
        let mut tail = self.store.read(channel, start, count).await?;
        if tail.gap == Some(GapReason::Trimmed) {
            // Fewer are retained: the oldest there is on.
            let oldest = Position::new(head.epoch, tail.oldest.saturating_sub(1));
            tail = self.store.read(channel, oldest, count).await?;
        }
        if tail.head.epoch != head.epoch {
            return Ok(Vec::new());
        }
        let mut tail: Vec<Event> = tail
            .events
            .into_iter()
            .filter(|e| e.id.offset <= head.offset)
            .collect();
        let (mut kept, mut start) = (0, tail.len());
        for (index, event) in tail.iter().enumerate().rev() {
            if kept + event.data.len() > *budget {
                break;
            }
            kept += event.data.len();
            start = index;
        }
        tail.drain(..start);
        *budget -= kept;
        Ok(tail)
    }
}

/// The events `route` accepts, ready to hand out.
fn accepted(route: &Route, events: Vec<Event>) -> Vec<SharedEvent> {
    events
        .into_iter()
        .filter(|e| route.accepts(e))
        .map(SharedEvent::new)
        .collect()
}

fn payload_bytes(events: &[Event]) -> usize {
    events.iter().map(|e| e.data.len()).sum()
}
