//! Control requests an instance missed while its bus was cut off: read back from the store's
//! history of the control channel, or, where they cannot be, the clients they might have
//! named closed.

use std::time::SystemTime;

use super::control::{CLOCK_SKEW, CONTROL_CHANNEL};
use super::{CloseReason, Inner};
use crate::error::{BackendError, BackendErrorKind, Result};
use crate::event::Event;
use crate::gap::GapReason;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// Requests read per store read, and reads per catch-up at most (then every client
/// connected is closed: what remains unread cannot be carried out precisely).
const PAGE: usize = 1_000;
const MAX_PAGES: usize = 100;

impl Inner {
    /// Carries out the control requests after `seen` that this instance did not hear, and
    /// moves `seen` past them. If the store cannot be read, or the requests were trimmed
    /// before this instance read them, closes the clients they may have named instead.
    pub(super) async fn catch_up(&self, seen: &mut Position, why: &str) {
        tracing::info!(why, after = %seen, "reading the control requests this instance may have missed");
        let began = SystemTime::now();
        match self.read_missed(seen, began).await {
            Ok(()) => {
                metrics::counter!(m::CONTROL_CATCH_UPS, "outcome" => "read").increment(1);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read all the missed control requests");
                self.close_unheard(began, "the missed control requests could not be read");
            }
        }
    }

    /// Closes every client connected before `before`: requests that might have named them
    /// are lost (`why`). They reconnect (through the application's authorization) and resume.
    fn close_unheard(&self, before: SystemTime, why: &str) {
        metrics::counter!(m::CONTROL_CATCH_UPS, "outcome" => "clients_closed").increment(1);
        let closed = self.close_clients_before(Some(before), CloseReason::Disconnected);
        tracing::warn!(
            closed,
            why,
            "closed the clients control requests may have named"
        );
    }

    /// Reads the requests after `seen` page by page, carrying each out for the clients
    /// connected before it (or before `began`), and moves `seen` along.
    async fn read_missed(&self, seen: &mut Position, began: SystemTime) -> Result<()> {
        let bound = self.config.subscribe_timeout;
        let before = |request: &Event| (request.timestamp + CLOCK_SKEW).max(began);
        for _ in 0..MAX_PAGES {
            let read = tokio::time::timeout(bound, self.store.read(CONTROL_CHANNEL, *seen, PAGE))
                .await
                .map_err(|_| {
                    BackendError::new(
                        "store",
                        BackendErrorKind::Timeout,
                        format!("reading control requests took longer than {bound:?}"),
                    )
                })??;
            match read.gap {
                None | Some(GapReason::Limit) => {
                    for request in &read.events {
                        self.apply_control(&request.data, Some(before(request)));
                        *seen = request.id;
                    }
                    if read.gap.is_none() || read.events.is_empty() {
                        return Ok(());
                    }
                }
                Some(reason) => {
                    // Not readable from `seen`: read what the store holds, from its oldest.
                    // Requests between are lost if the history was trimmed past them; a
                    // history that ended (expired unused, or lost with the store) and started
                    // again from 1 lost none this instance could have been sent since.
                    let trimmed = reason == GapReason::Trimmed || read.oldest > 1;
                    let start = Position::new(read.head.epoch, read.oldest.saturating_sub(1));
                    if read.head.epoch == Epoch::NONE || start == *seen {
                        *seen = read.head;
                        return Ok(());
                    }
                    if trimmed {
                        self.close_unheard(
                            began,
                            "control requests were trimmed from the store before this instance read them",
                        );
                    }
                    *seen = start;
                }
            }
        }
        Err(BackendError::new(
            "store",
            BackendErrorKind::Protocol,
            format!(
                "more than {} control requests to catch up on",
                PAGE * MAX_PAGES
            ),
        )
        .into())
    }
}
