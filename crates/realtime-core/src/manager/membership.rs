//! Joining and leaving channels while a client is connected.

use std::sync::Arc;

use super::Inner;
use super::client::{Client, Membership};
use super::hub::Hub;
use super::request::{ChannelRequest, Replay};
use crate::error::{BackendError, BackendErrorKind, Result};

impl Client {
    /// Adds `channels` to this client while it runs (a WebSocket `subscribe`, say), with the
    /// same guarantee as [`Manager::subscribe`](crate::Manager::subscribe): live delivery starts
    /// before history is read, so nothing is lost or repeated. Returns the replay of every
    /// channel that asked to resume, in request order.
    ///
    /// Fails without joining any channel if a name is invalid, already joined, listed twice,
    /// or would exceed `max_channels_per_client`.
    pub async fn join(&mut self, channels: Vec<ChannelRequest>) -> Result<Vec<Replay>> {
        self.manager.check_open()?;
        let joined: Vec<&str> = self.channels().collect();
        self.manager.validate_channels(&channels, &joined)?;
        let tenant = self.shared.route.tenant.clone();
        let channels = self.manager.scoped_requests(tenant.as_deref(), channels);
        self.join_validated(channels).await
    }

    /// Removes `channel` from this client; returns whether it had joined it. Messages of the
    /// channel still queued are skipped.
    pub fn leave(&mut self, channel: &str) -> bool {
        let channel = self
            .manager
            .scoped(self.shared.route.tenant.as_deref(), channel);
        let Some(index) = self
            .memberships
            .iter()
            .position(|m| *m.hub.name == *channel)
        else {
            return false;
        };
        let membership = self.memberships.remove(index);
        membership.hub.remove_client(membership.slot);
        self.manager.release_hub(&membership.hub);
        true
    }

    /// Joins `channels` within `subscribe_timeout`; on a timeout nothing is joined.
    pub(super) async fn join_validated(
        &mut self,
        channels: Vec<ChannelRequest>,
    ) -> Result<Vec<Replay>> {
        let timeout = self.manager.config.subscribe_timeout;
        let first_new = self.memberships.len();
        match tokio::time::timeout(timeout, self.join_unbounded(channels)).await {
            Ok(result) => result,
            Err(_) => {
                self.leave_from(first_new);
                Err(BackendError::new(
                    "manager",
                    BackendErrorKind::Timeout,
                    format!("subscribing took longer than {timeout:?} (store or bus unavailable?)"),
                )
                .into())
            }
        }
    }

    async fn join_unbounded(&mut self, channels: Vec<ChannelRequest>) -> Result<Vec<Replay>> {
        let inner = self.manager.clone();
        let first_new = self.memberships.len();
        // Per channel: whether this join started listening to it (per instance, nothing
        // published before is in this instance's history then).
        let mut started = Vec::with_capacity(channels.len());
        for channel in &channels {
            // Released again if readying fails or this future is dropped (a timeout, a client
            // gone mid-subscribe).
            let mut acquired = Acquired {
                inner: &inner,
                hub: inner.acquire_hub(&channel.channel),
                kept: false,
            };
            started.push(!acquired.hub.is_listening());
            if let Err(error) = acquired.hub.ensure_ready(&inner.bus).await {
                drop(acquired);
                self.leave_from(first_new);
                return Err(error);
            }
            acquired.kept = true;
            let hub = acquired.hub.clone();
            // Everything up to the hub's position when the client joins is history, not live.
            let (slot, baseline) = hub.add_client(self.shared.clone());
            self.memberships.push(Membership {
                hub,
                slot,
                cursor: Some(baseline),
            });
        }
        let mut replay = Vec::new();
        // One budget for the whole join: a client resuming 32 channels holds what one may.
        let mut budget = inner.config.replay_max_bytes;
        for (index, channel) in channels.iter().enumerate() {
            let read = match (&channel.resume_from, channel.backlog) {
                (Some(token), _) => {
                    inner
                        .replay(
                            &channel.channel,
                            token,
                            &self.shared.route,
                            &mut budget,
                            started[index],
                        )
                        .await
                }
                (None, backlog) => match backlog.unwrap_or(inner.config.backlog_on_connect) {
                    0 => continue,
                    count => {
                        inner
                            .backlog(&channel.channel, count, &self.shared.route, &mut budget)
                            .await
                    }
                },
            };
            match read {
                Ok((result, cursor)) => {
                    self.memberships[first_new + index].cursor = Some(cursor);
                    replay.push(result);
                }
                Err(error) => {
                    self.leave_from(first_new);
                    return Err(error);
                }
            }
        }
        Ok(replay)
    }

    /// Leaves every channel joined from index `first` on (a join that failed half-way).
    fn leave_from(&mut self, first: usize) {
        for membership in self.memberships.drain(first..) {
            membership.hub.remove_client(membership.slot);
            self.manager.release_hub(&membership.hub);
        }
    }
}

/// A hub reference that is given back unless kept.
struct Acquired<'a> {
    inner: &'a Inner,
    hub: Arc<Hub>,
    kept: bool,
}

impl Drop for Acquired<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.inner.release_hub(&self.hub);
        }
    }
}
