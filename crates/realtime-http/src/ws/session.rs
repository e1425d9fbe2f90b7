//! One connection's protocol after the upgrade, with no socket I/O.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use realtime_core::auth::{Authorize, Rejection};
use realtime_core::message::Encoded;
use realtime_core::{ChannelRequest, Client, CloseReason, Message, SharedEvent, SubscribeRequest};

use super::Shared;
use super::protocol::{ClientMessage, ServerMessage};
use super::topics::check_topic;
use crate::error::ApiError;

/// Close codes of the protocol (see the `realtime-ws` crate docs).
pub mod close_code {
    /// The manager disconnected the client.
    pub const DISCONNECTED: u16 = 1000;
    /// The server is shutting down; reconnect (possibly elsewhere).
    pub const SHUTDOWN: u16 = 1001;
    /// The client broke the WebSocket protocol (an unmasked frame, a bad opcode, a control
    /// frame too long, a continuation with nothing to continue…).
    pub const PROTOCOL: u16 = 1002;
    /// A text frame was not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message exceeded the read limit.
    pub const TOO_BIG: u16 = 1009;
    /// The client did not read fast enough; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 1013;
}

/// Most messages handed out at once: what is already queued goes out in one write.
const MAX_BATCH: usize = 64;

/// What to write next.
#[derive(Debug)]
pub enum Outgoing {
    /// Messages to write, in order (then flush): text, or binary for an event with binary
    /// data.
    Messages(Vec<Encoded>),
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// The messages answering one client message, in order. A replay's events are encoded as
/// they are taken, so a long replay is not held twice.
#[derive(Debug, Default)]
pub struct Replies {
    items: VecDeque<Reply>,
}

#[derive(Debug)]
enum Reply {
    Ready(Bytes),
    Event(SharedEvent),
}

impl Replies {
    fn one(message: Bytes) -> Self {
        Replies {
            items: VecDeque::from([Reply::Ready(message)]),
        }
    }

    fn push(&mut self, message: Bytes) {
        self.items.push_back(Reply::Ready(message));
    }
}

impl Iterator for Replies {
    type Item = Encoded;

    fn next(&mut self) -> Option<Encoded> {
        match self.items.pop_front()? {
            Reply::Ready(message) => Some(Encoded::Text(message)),
            Reply::Event(event) => Some(event.message()),
        }
    }
}

/// One accepted WebSocket connection: its client and what the protocol says to write.
#[derive(Debug)]
pub struct WsSession {
    client: Client,
    topics: Vec<String>,
    shared: Arc<Shared>,
    /// Boxed: most endpoints have no hook and keep none, and an idle connection should not
    /// carry a request head's worth of empty space.
    parts: Option<Box<Parts>>,
    /// The backlog (or gap) of the URL's topics, written after the greeting.
    pending: Replies,
}

fn encode(message: &Message) -> Option<Encoded> {
    match message {
        Message::Event(event) => Some(event.message()),
        Message::Gap(gap) => Some(Encoded::Text(realtime_core::message::encode_gap(gap))),
        _ => None,
    }
}

/// Each replay's gap (if any) then its events, in order.
fn replies_of(replays: Vec<realtime_core::Replay>) -> Replies {
    let mut replies = Replies::default();
    for replay in replays {
        if let Some(gap) = &replay.gap {
            replies.push(realtime_core::message::encode_gap(gap));
        }
        replies
            .items
            .extend(replay.events.into_iter().map(Reply::Event));
    }
    replies
}

fn error(code: &str, message: &str) -> Replies {
    Replies::one(ServerMessage::Error { code, message }.encode())
}

impl WsSession {
    pub(super) fn new(
        client: Client,
        topics: Vec<String>,
        shared: Arc<Shared>,
        parts: Option<Parts>,
        replay: Vec<realtime_core::Replay>,
    ) -> Self {
        WsSession {
            client,
            topics,
            shared,
            parts: parts.map(Box::new),
            pending: replies_of(replay),
        }
    }

    /// The client's id (for logs).
    pub fn client_id(&self) -> &str {
        self.client.id()
    }

    /// The first message: `subscribed` with the topics of the URL.
    pub fn greeting(&self) -> Bytes {
        ServerMessage::Subscribed {
            topics: &self.topics,
            client_id: Some(self.client.id()),
        }
        .encode()
    }

    /// Waits for the client's next messages and hands out what is queued (up to a batch);
    /// once the client is closed, the close code its reason maps to.
    pub async fn next_outgoing(&mut self) -> Outgoing {
        std::future::poll_fn(|cx| self.poll_outgoing(cx)).await
    }

    /// [`next_outgoing`](Self::next_outgoing) as a poll function, for a socket loop written
    /// as its own future (an idle connection then weighs its fields, not an `async fn`'s
    /// states).
    ///
    /// # Behavior
    /// `Ready` with the URL topics' backlog first (up to a batch at a time), then with the
    /// client's queued messages (at least one, up to a batch), then with the close once the
    /// client is closed and its queue drained; `Pending` (with `cx` woken later) when nothing
    /// is queued.
    pub fn poll_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        // The URL topics' backlog first (it ends where the live events begin) — unless the
        // client was closed meanwhile (a disconnect, a shutdown): then the close, at once.
        if !self.pending.items.is_empty() {
            if self.client.close_reason().is_some() {
                self.pending = Replies::default();
            }
            let pending: Vec<Encoded> = self.pending.by_ref().take(MAX_BATCH).collect();
            if self.pending.items.is_empty() {
                // Drained: free the queue a long backlog grew, not keep it for the
                // connection's life.
                self.pending = Replies::default();
            }
            if !pending.is_empty() {
                return Poll::Ready(Outgoing::Messages(pending));
            }
        }
        let Some(first) = std::task::ready!(self.client.poll_recv(cx)) else {
            return Poll::Ready(match self.client.close_reason() {
                Some(CloseReason::SlowConsumer) => {
                    Outgoing::Close(close_code::SLOW_CONSUMER, "slow_consumer")
                }
                Some(CloseReason::Shutdown) => Outgoing::Close(close_code::SHUTDOWN, "shutdown"),
                _ => Outgoing::Close(close_code::DISCONNECTED, "disconnected"),
            });
        };
        let mut batch: Vec<Encoded> = encode(&first).into_iter().collect();
        while batch.len() < MAX_BATCH {
            let Some(next) = self.client.try_recv() else {
                break;
            };
            batch.extend(encode(&next));
        }
        Poll::Ready(Outgoing::Messages(batch))
    }

    /// The answer to a binary frame (the client's side of the protocol is JSON text).
    pub fn binary_refused(&self) -> Bytes {
        ServerMessage::Error {
            code: "binary_not_supported",
            message: "send JSON text frames",
        }
        .encode()
    }

    /// The application keepalive message ([`WsConfig::keepalive_message`](super::WsConfig::keepalive_message)), made now.
    pub fn keepalive(&self) -> Bytes {
        serde_json::to_vec(&self.shared.config.keepalive_message.make())
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Answers one text message from the client: the messages to write back, in order. A bad
    /// message gets an `error` message; it never ends the connection.
    pub async fn on_text(&mut self, text: &str) -> Replies {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => return error("invalid_message", &format!("not a protocol message: {e}")),
        };
        match message {
            ClientMessage::Ping => Replies::one(ServerMessage::Pong.encode()),
            ClientMessage::Unsubscribe { topics } => {
                let left: Vec<String> = topics
                    .into_iter()
                    .filter(|t| self.client.leave(t))
                    .collect();
                Replies::one(ServerMessage::Unsubscribed { topics: &left }.encode())
            }
            ClientMessage::Subscribe {
                topics,
                last_event_ids,
                backlog,
            } => self.subscribe(topics, last_event_ids, backlog).await,
        }
    }

    async fn subscribe(
        &mut self,
        topics: Vec<String>,
        last_event_ids: std::collections::HashMap<String, String>,
        backlog: Option<usize>,
    ) -> Replies {
        let config = &self.shared.config;
        let too_many = format!("at most {} topics per connection", config.max_topic_count);
        let mut wanted: Vec<String> = Vec::new();
        let mut distinct = HashSet::new();
        for topic in topics {
            if let Err(e) = check_topic(&topic, config.max_topic_length) {
                return error(
                    "invalid_topic",
                    &format!("topic {:?}: {}", e.topic, e.reason),
                );
            }
            if distinct.insert(topic.clone()) {
                // Every wanted topic ends up joined: past the limit already, stop here.
                if distinct.len() > config.max_topic_count {
                    return error("too_many_topics", &too_many);
                }
                wanted.push(topic);
            }
        }
        let joined: Vec<String> = self.client.channels().map(str::to_owned).collect();
        // A joined topic is joined again only to resume it (its replay comes, then live).
        let new: Vec<ChannelRequest> = wanted
            .iter()
            .filter(|t| !joined.contains(t) || last_event_ids.contains_key(*t))
            .map(|t| ChannelRequest {
                channel: t.clone(),
                resume_from: last_event_ids.get(t).cloned(),
                backlog,
            })
            .collect();
        let kept = joined
            .iter()
            .filter(|t| !new.iter().any(|n| &n.channel == *t))
            .count();
        if kept + new.len() > config.max_topic_count {
            return error("too_many_topics", &too_many);
        }
        if let (Some(authorize), Some(parts)) = (&self.shared.authorize, &self.parts)
            && let Err(refused) = authorized(authorize, parts, &self.client, &new).await
        {
            return error(refused.code, &refused.message);
        }
        let mut left: Vec<String> = Vec::new();
        for rejoin in new.iter().filter(|n| joined.contains(&n.channel)) {
            self.client.leave(&rejoin.channel);
            left.push(rejoin.channel.clone());
        }
        match self.client.join(new).await {
            Ok(replays) => {
                let mut replies = replies_of(replays);
                replies.push(
                    ServerMessage::Subscribed {
                        topics: &wanted,
                        client_id: None,
                    }
                    .encode(),
                );
                replies
            }
            Err(e) => {
                let mut replies = error("subscribe_failed", &e.to_string());
                if !left.is_empty() {
                    // The topics left to be resumed are not joined any more: say so.
                    replies.push(ServerMessage::Unsubscribed { topics: &left }.encode());
                }
                replies
            }
        }
    }
}

/// Runs the hook for the channels an in-band `subscribe` adds, as for the upgrade; the grant
/// must keep the connection's tenant and subject (its routing cannot change mid-connection).
async fn authorized(
    authorize: &Authorize<Parts>,
    parts: &Parts,
    client: &Client,
    channels: &[ChannelRequest],
) -> Result<(), ApiError> {
    let route = client.route();
    let request = SubscribeRequest {
        client_id: Some(client.id().to_owned()),
        channels: channels.to_vec(),
        tenant: route.tenant.as_deref().map(str::to_owned),
        subject: route.subject.as_deref().map(str::to_owned),
    };
    let grant = authorize.check(parts, &request).await?;
    if grant.tenant.as_deref() != route.tenant.as_deref()
        || grant.subject.as_deref() != route.subject.as_deref()
    {
        return Err(Rejection::forbidden(
            "these topics are granted to another tenant or subject than this connection's",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::Request;
    use realtime_core::{Manager, PublishRequest};

    use super::*;
    use crate::ws::{WsConfig, WsEndpoint};

    #[tokio::test]
    async fn a_drained_backlog_frees_its_queue() {
        let manager = Manager::builder().build().unwrap();
        for n in 0..100 {
            manager
                .publish(PublishRequest::new("a", format!("{n}")))
                .await
                .unwrap();
        }
        let endpoint = WsEndpoint::new(manager, WsConfig::default(), None).unwrap();
        let parts = Request::get("/ws?topics=a&backlog=100")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let mut session = endpoint.accept(parts).await.unwrap();
        assert!(session.pending.items.capacity() >= 100);
        let mut written = 0;
        while written < 100 {
            match session.next_outgoing().await {
                Outgoing::Messages(messages) => written += messages.len(),
                Outgoing::Close(..) => panic!("closed"),
            }
        }
        assert_eq!(written, 100);
        assert_eq!(session.pending.items.capacity(), 0);
    }
}
