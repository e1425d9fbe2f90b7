//! One connected WebSocket: events out, protocol messages in, pings and keepalives.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use http::request::Parts;
use realtime_core::auth::{Authorize, Rejection};
use realtime_core::{ChannelRequest, Client, CloseReason, Message, Replay, SubscribeRequest};
use realtime_http::ApiError;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::endpoint::Inner;
use crate::protocol::{ClientMessage, ServerMessage};
use crate::topics::check_topic;

/// Close codes this endpoint uses (see the crate docs).
pub mod close_code {
    /// The manager disconnected the client.
    pub const DISCONNECTED: u16 = 1000;
    /// The server is shutting down; reconnect (possibly elsewhere).
    pub const SHUTDOWN: u16 = 1001;
    /// A text frame was not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message exceeded the read limit.
    pub const TOO_BIG: u16 = 1009;
    /// The client did not read fast enough; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 1013;
}

enum Outcome {
    Continue,
    Close(u16, &'static str),
    Gone,
}

pub(crate) async fn run(
    mut socket: WebSocket,
    mut client: Client,
    topics: Vec<String>,
    inner: Arc<Inner>,
    parts: Option<Parts>,
) {
    let config = &inner.config;
    let write_timeout = config.write_timeout;
    let heartbeat = config.heartbeat_interval;
    let mut ping = interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let keepalive_every = config
        .keepalive_interval
        .unwrap_or(Duration::from_secs(3_600));
    let mut keepalive = interval_at(Instant::now() + keepalive_every, keepalive_every);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut outcome = send(
        &mut socket,
        ServerMessage::Subscribed { topics: &topics }.encode(),
        write_timeout,
    )
    .await;
    while matches!(outcome, Outcome::Continue) {
        outcome = tokio::select! {
            message = client.recv() => match message {
                Some(message) => send_batch(&mut socket, &mut client, message, write_timeout).await,
                None => match client.close_reason() {
                    Some(CloseReason::SlowConsumer) => Outcome::Close(close_code::SLOW_CONSUMER, "slow_consumer"),
                    Some(CloseReason::Shutdown) => Outcome::Close(close_code::SHUTDOWN, "shutdown"),
                    _ => Outcome::Close(close_code::DISCONNECTED, "disconnected"),
                },
            },
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Frame::Close(_))) => Outcome::Gone,
                Some(Ok(Frame::Text(text))) => handle(&mut socket, &mut client, &inner, parts.as_ref(), text.as_str()).await,
                Some(Ok(Frame::Binary(_))) => {
                    let error = ServerMessage::Error { code: "binary_not_supported", message: "send JSON text frames" };
                    send(&mut socket, error.encode(), write_timeout).await
                }
                Some(Ok(_)) => Outcome::Continue,
                Some(Err(error)) => read_failure(error),
            },
            _ = ping.tick() => send_frame(&mut socket, Frame::Ping(Bytes::new()), write_timeout).await,
            _ = keepalive.tick(), if config.keepalive_interval.is_some() => {
                let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
                send(&mut socket, ServerMessage::Keepalive { timestamp }.encode(), write_timeout).await
            }
        };
    }
    if let Outcome::Close(code, reason) = outcome {
        tracing::debug!(client = client.id(), code, reason, "closing websocket");
        let close = Frame::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(write_timeout, socket.send(close)).await;
    }
}

/// Maps a read error to the close code the client should see.
fn read_failure(error: axum::Error) -> Outcome {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            Outcome::Close(close_code::TOO_BIG, "message too big")
        }
        Some(tungstenite::Error::Utf8(_)) => {
            Outcome::Close(close_code::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        _ => {
            tracing::debug!(error = %inner, "websocket read failed");
            Outcome::Gone
        }
    }
}

fn frame(message: &Message) -> Bytes {
    match message {
        Message::Event(event) => event.message(),
        Message::Gap(gap) => realtime_core::message::encode_gap(gap),
        _ => Bytes::new(),
    }
}

/// Most messages written before one flush: what is already queued goes out in one write.
const MAX_BATCH: usize = 64;
/// Bytes written before a flush within one batch.
const FLUSH_BYTES: usize = 64 * 1024;

/// Writes `first` and whatever else the client has queued (up to [`MAX_BATCH`]), then flushes
/// once: one system call for a burst instead of one per message.
async fn send_batch(
    socket: &mut WebSocket,
    client: &mut Client,
    first: Message,
    timeout: Duration,
) -> Outcome {
    let write = async {
        let mut next = Some(first);
        let (mut written, mut unflushed) = (0, 0);
        while let Some(message) = next.take() {
            if let Ok(text) = Utf8Bytes::try_from(frame(&message)) {
                unflushed += text.len();
                socket.feed(Frame::Text(text)).await?;
            }
            // Keep the write buffer small (its limit is `max_write_buffer`).
            if unflushed >= FLUSH_BYTES {
                socket.flush().await?;
                unflushed = 0;
            }
            written += 1;
            if written < MAX_BATCH {
                next = client.try_recv();
            }
        }
        socket.flush().await
    };
    timed_write(timeout, write).await
}

async fn send(socket: &mut WebSocket, text: Bytes, timeout: Duration) -> Outcome {
    match Utf8Bytes::try_from(text) {
        Ok(text) => send_frame(socket, Frame::Text(text), timeout).await,
        Err(_) => Outcome::Continue,
    }
}

async fn send_frame(socket: &mut WebSocket, frame: Frame, timeout: Duration) -> Outcome {
    timed_write(timeout, socket.send(frame)).await
}

/// A write that must finish within `timeout`; a failed or late write ends the connection.
async fn timed_write(
    timeout: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Outcome {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Outcome::Continue,
        Ok(Err(_)) => Outcome::Gone,
        Err(_) => {
            tracing::debug!("websocket write timed out");
            metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => "ws")
                .increment(1);
            Outcome::Gone
        }
    }
}

async fn error(socket: &mut WebSocket, code: &str, message: &str, timeout: Duration) -> Outcome {
    send(
        socket,
        ServerMessage::Error { code, message }.encode(),
        timeout,
    )
    .await
}

/// Answers one protocol message. A bad message gets an `error` message; it never ends the
/// connection.
async fn handle(
    socket: &mut WebSocket,
    client: &mut Client,
    inner: &Inner,
    parts: Option<&Parts>,
    text: &str,
) -> Outcome {
    let timeout = inner.config.write_timeout;
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => {
            return error(
                socket,
                "invalid_message",
                &format!("not a protocol message: {e}"),
                timeout,
            )
            .await;
        }
    };
    match message {
        ClientMessage::Ping => send(socket, ServerMessage::Pong.encode(), timeout).await,
        ClientMessage::Unsubscribe { topics } => {
            let left: Vec<String> = topics.into_iter().filter(|t| client.leave(t)).collect();
            send(
                socket,
                ServerMessage::Unsubscribed { topics: &left }.encode(),
                timeout,
            )
            .await
        }
        ClientMessage::Subscribe {
            topics,
            last_event_ids,
        } => {
            let config = &inner.config;
            let too_many = format!("at most {} topics per connection", config.max_topic_count);
            let mut wanted: Vec<String> = Vec::new();
            let mut distinct = HashSet::new();
            for topic in topics {
                if let Err(e) = check_topic(&topic, config.max_topic_length) {
                    let message = format!("topic {:?}: {}", e.topic, e.reason);
                    return error(socket, "invalid_topic", &message, timeout).await;
                }
                if distinct.insert(topic.clone()) {
                    // Every wanted topic ends up joined: past the limit already, stop here.
                    if distinct.len() > config.max_topic_count {
                        return error(socket, "too_many_topics", &too_many, timeout).await;
                    }
                    wanted.push(topic);
                }
            }
            let joined: Vec<String> = client.channels().map(str::to_owned).collect();
            // A joined topic is joined again only to resume it (its replay comes, then live).
            let new: Vec<ChannelRequest> = wanted
                .iter()
                .filter(|t| !joined.contains(t) || last_event_ids.contains_key(*t))
                .map(|t| ChannelRequest {
                    channel: t.clone(),
                    resume_from: last_event_ids.get(t).cloned(),
                })
                .collect();
            let kept = joined
                .iter()
                .filter(|t| !new.iter().any(|n| &n.channel == *t))
                .count();
            if kept + new.len() > config.max_topic_count {
                return error(socket, "too_many_topics", &too_many, timeout).await;
            }
            if let (Some(authorize), Some(parts)) = (&inner.authorize, parts)
                && let Err(refused) = authorized(authorize, parts, client, &new).await
            {
                return error(socket, refused.code, &refused.message, timeout).await;
            }
            let mut left: Vec<String> = Vec::new();
            for rejoin in new.iter().filter(|n| joined.contains(&n.channel)) {
                client.leave(&rejoin.channel);
                left.push(rejoin.channel.clone());
            }
            match client.join(new).await {
                Ok(replays) => {
                    for replay in &replays {
                        if let Outcome::Close(..) | Outcome::Gone =
                            send_replay(socket, replay, timeout).await
                        {
                            return Outcome::Gone;
                        }
                    }
                    send(
                        socket,
                        ServerMessage::Subscribed { topics: &wanted }.encode(),
                        timeout,
                    )
                    .await
                }
                Err(e) => {
                    let outcome = error(socket, "subscribe_failed", &e.to_string(), timeout).await;
                    if left.is_empty() || !matches!(outcome, Outcome::Continue) {
                        return outcome;
                    }
                    // The topics left to be resumed are not joined any more: say so.
                    let message = ServerMessage::Unsubscribed { topics: &left };
                    send(socket, message.encode(), timeout).await
                }
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

async fn send_replay(socket: &mut WebSocket, replay: &Replay, timeout: Duration) -> Outcome {
    let gap = replay.gap.as_ref().map(realtime_core::message::encode_gap);
    for frame in gap
        .into_iter()
        .chain(replay.events.iter().map(|e| e.message()))
    {
        if !matches!(send(socket, frame, timeout).await, Outcome::Continue) {
            return Outcome::Gone;
        }
    }
    Outcome::Continue
}
