//! A connected subscriber and the channels it has joined.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::Inner;
use super::hub::Hub;
use super::queue::{ClientShared, CloseReason, Message};
use crate::position::Position;
use crate::routing::Route;

/// One channel of a client, with the newest position it has been given.
pub(crate) struct Membership {
    pub(crate) hub: Arc<Hub>,
    pub(crate) slot: usize,
    /// Live events at or before this position were already replayed: skipped.
    pub(crate) cursor: Option<Position>,
}

/// A connected subscriber: a stream of [`Message`]s for one or several channels.
///
/// Dropping it leaves every channel at once (the manager's connection count drops, and the
/// bus subscription is released when it was the channel's last local client).
pub struct Client {
    pub(crate) shared: Arc<ClientShared>,
    pub(crate) memberships: Vec<Membership>,
    pub(crate) manager: Arc<Inner>,
}

impl Client {
    /// The client's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The channels, in subscription order, by the names the client asked for (a
    /// tenant-scoped channel by its plain name).
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.memberships
            .iter()
            .map(|m| crate::routing::channel_name(&m.hub.name))
    }

    /// The client's tenant and subject.
    pub fn route(&self) -> &Route {
        &self.shared.route
    }

    /// Why the stream ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// The next message; `None` once the client was closed and its queue drained.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        let waker = Waker::noop();
        match self.poll_recv(&mut Context::from_waker(waker)) {
            Poll::Ready(message) => message,
            Poll::Pending => None,
        }
    }

    /// Polls for the next message, skipping live events already given by the replay.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            let Some(message) = std::task::ready!(self.shared.poll_next(cx)) else {
                return Poll::Ready(None);
            };
            let (channel, position) = match &message {
                Message::Event(event) => (event.channel.as_str(), event.id),
                Message::Gap(gap) => (&*gap.channel, gap.head),
            };
            let Some(member) = self
                .memberships
                .iter_mut()
                .find(|m| &*m.hub.name == channel)
            else {
                continue;
            };
            if let (Message::Event(_), Some(cursor)) = (&message, member.cursor)
                && cursor.epoch == position.epoch
                && position.offset <= cursor.offset
            {
                continue;
            }
            member.cursor = Some(position);
            return Poll::Ready(Some(message));
        }
    }
}

impl futures_core::Stream for Client {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.manager.release_client(&self.shared, &self.memberships);
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.shared.id)
            .field("channels", &self.channels().collect::<Vec<_>>())
            .field("route", &self.shared.route)
            .finish()
    }
}
