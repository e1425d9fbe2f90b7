//! The SSE response body: prelude (retry, replay), `: connected`, then live events and
//! heartbeats; and the endpoint that opens it from a request.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use http::header::{self, HeaderName};
use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{ChannelRequest, Client, Manager, Message, SharedEvent, SubscribeRequest, sse};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::error::ApiError;
use crate::query::{Query, resume_position};
use crate::routing::settle_routing;
use crate::sse_config::SseConfig;

/// The SSE endpoint, framework-neutral: from a request's [`Parts`] to an [`SseStream`] or an
/// [`ApiError`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SseEndpoint {
    manager: Manager,
    config: SseConfig,
    authorize: Option<Authorize<Parts>>,
}

impl SseEndpoint {
    /// The response headers of an event stream (type, no caching, no proxy buffering).
    pub const HEADERS: [(HeaderName, HeaderValue); 3] = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ),
    ];

    /// An endpoint for `manager`'s channels; `config` is validated.
    pub fn new(
        manager: Manager,
        config: SseConfig,
        authorize: Option<Authorize<Parts>>,
    ) -> realtime_core::Result<Self> {
        config.validate()?;
        Ok(SseEndpoint {
            manager,
            config,
            authorize,
        })
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The configuration.
    pub fn config(&self) -> &SseConfig {
        &self.config
    }

    /// The subscription a request asks for: the channel and resume position from the query
    /// and `Last-Event-ID`, the tenant and subject settled with the hook.
    async fn subscription(&self, parts: &Parts) -> Result<SubscribeRequest, ApiError> {
        crate::check_host(parts)?;
        let config = &self.config;
        let query = Query::parse(parts.uri.query().unwrap_or_default());
        let channel = query.single(&config.channel_param)?.ok_or_else(|| {
            ApiError::bad_request(
                "invalid_channel",
                format!("the {:?} query parameter is required", config.channel_param),
            )
        })?;
        let resume_from = resume_position(&parts.headers, &query, &config.last_event_id_param)?;
        let mut subscription = SubscribeRequest {
            client_id: crate::routing::client_id_from(parts, config.client_id_header.as_deref())?,
            channels: vec![ChannelRequest {
                channel,
                resume_from,
                backlog: crate::query::backlog(&query, &config.backlog_param)?,
            }],
            tenant: query.single(&config.tenant_param)?,
            subject: query.single(&config.subject_param)?,
        };
        settle_routing(
            self.authorize.as_ref(),
            config.routing_from_query,
            parts,
            &mut subscription,
        )
        .await?;
        Ok(subscription)
    }

    /// Answers a `HEAD`: the checks of [`SseEndpoint::open`] (query, resume position,
    /// authorization, channel name), without subscribing — a `HEAD` costs no slot, no replay
    /// and no bus subscription. `Ok` means a `GET` would get the stream's headers.
    pub async fn check(&self, parts: &Parts) -> Result<(), ApiError> {
        if self.manager.is_closed() {
            return Err(realtime_core::Error::Closed.into());
        }
        let subscription = self.subscription(parts).await?;
        for channel in &subscription.channels {
            realtime_core::routing::validate_channel(
                &channel.channel,
                self.manager.config().max_channel_len,
            )?;
        }
        Ok(())
    }

    /// Opens the stream a request asks for: the channel and resume position from the query
    /// and `Last-Event-ID` ([`resume_position`]), the tenant and subject from the hook
    /// ([`settle_routing`]), the subscription, and the body that replays, then goes live.
    pub async fn open(&self, parts: &Parts) -> Result<SseStream, ApiError> {
        let config = &self.config;
        let subscription = self.subscription(parts).await?;
        let manager = &self.manager;
        let realtime_core::Subscription { client, replay } = manager
            .subscribe(subscription)
            .await
            .map_err(|error| ApiError::from(error).over_capacity_as(config.over_capacity_status))?;
        // Replayed events are encoded as they are written, not all up front: an SSE frame
        // can be several times its event's size, and the client may read slowly.
        let mut prelude =
            VecDeque::with_capacity(3 + replay.iter().map(|r| r.events.len()).sum::<usize>());
        // The retry, and the client's id as a comment (EventSource ignores it; a client
        // that reads the raw stream learns which id to disconnect).
        let mut first = BytesMut::from(&sse::encode_retry(config.retry_ms)[..]);
        first.truncate(first.len() - 1);
        first.extend_from_slice(b": client_id ");
        first.extend_from_slice(client.id().as_bytes());
        first.extend_from_slice(b"\n\n");
        prelude.push_back(Prelude::Bytes(first.freeze()));
        for channel in replay {
            if let Some(gap) = &channel.gap {
                prelude.push_back(Prelude::Bytes(sse::encode_gap(gap)));
            }
            prelude.extend(channel.events.into_iter().map(Prelude::Event));
        }
        prelude.push_back(Prelude::Bytes(sse::encode_comment("connected")));
        Ok(SseStream::new(prelude, client, config.heartbeat_interval))
    }
}

/// Largest chunk built from messages that are already queued; one write instead of many.
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// What goes out before live events: fixed chunks, and replayed events encoded only when
/// their turn comes.
enum Prelude {
    Bytes(Bytes),
    Event(SharedEvent),
}

/// An event stream's body: `retry:`, the replay (or the gap), `: connected`, then live
/// events and heartbeats, ending with a `: closed: <reason>` comment when the client is
/// closed. A [`Stream`](futures_core::Stream) of byte chunks that never fails: an adapter
/// only makes it its response body, with [`SseEndpoint::HEADERS`].
pub struct SseStream {
    prelude: VecDeque<Prelude>,
    client: Option<Client>,
    heartbeat: Interval,
    /// When data last went out. Re-arming the timer on every event costs more than reading
    /// the clock, so a tick that comes too soon after traffic re-arms it from here instead.
    last_sent: Instant,
}

impl SseStream {
    fn new(prelude: VecDeque<Prelude>, client: Client, heartbeat: Duration) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        SseStream {
            prelude,
            client: Some(client),
            heartbeat,
            last_sent: Instant::now(),
        }
    }
}

fn frame(message: &Message) -> Bytes {
    match message {
        Message::Event(event) => event.sse_frame(),
        Message::Gap(gap) => sse::encode_gap(gap),
        // A message kind this adapter does not know: nothing to send.
        _ => Bytes::new(),
    }
}

impl futures_core::Stream for SseStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(item) = this.prelude.pop_front() {
            if this.prelude.is_empty() {
                // Written out: free the queue (a replay's length), not keep it for the
                // connection's life.
                this.prelude = VecDeque::new();
            }
            return Poll::Ready(Some(Ok(match item {
                Prelude::Bytes(chunk) => chunk,
                // Encoded now and dropped once written: one frame in memory at a time.
                Prelude::Event(event) => sse::encode_event(&event),
            })));
        }
        let Some(client) = this.client.as_mut() else {
            return Poll::Ready(None);
        };
        match client.poll_recv(cx) {
            Poll::Ready(Some(first)) => {
                this.last_sent = Instant::now();
                let first = frame(&first);
                // Coalesce whatever else is already queued; a lone frame is sent as-is,
                // shared with every other client.
                let mut batch: Option<BytesMut> = None;
                while batch.as_ref().map_or(first.len(), BytesMut::len) < MAX_BATCH_BYTES {
                    let Poll::Ready(Some(next)) = client.poll_recv(cx) else {
                        break;
                    };
                    let buf = batch.get_or_insert_with(|| BytesMut::from(&first[..]));
                    buf.extend_from_slice(&frame(&next));
                }
                Poll::Ready(Some(Ok(batch.map_or(first, BytesMut::freeze))))
            }
            Poll::Ready(None) => {
                let reason = client.close_reason().map_or("closed", |r| r.as_str());
                tracing::debug!(client = client.id(), reason, "sse stream ends");
                // Dropping the client releases it in the manager right away.
                this.client = None;
                Poll::Ready(Some(Ok(sse::encode_comment(&format!("closed: {reason}")))))
            }
            Poll::Pending => loop {
                if this.heartbeat.poll_tick(cx).is_pending() {
                    return Poll::Pending;
                }
                let due = this.last_sent + this.heartbeat.period();
                if due <= Instant::now() {
                    this.last_sent = Instant::now();
                    return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
                }
                // Traffic since the last tick: the next heartbeat is one period after it.
                this.heartbeat.reset_at(due);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_core::Stream;
    use realtime_core::{Manager, PublishRequest};

    use super::*;
    use crate::{SseConfig, SseEndpoint};

    #[tokio::test]
    async fn a_written_prelude_frees_its_queue() {
        let manager = Manager::builder().build().unwrap();
        let first = manager
            .publish(PublishRequest::new("a", "0"))
            .await
            .unwrap();
        for n in 1..100 {
            manager
                .publish(PublishRequest::new("a", format!("{n}")))
                .await
                .unwrap();
        }
        let endpoint = SseEndpoint::new(manager, SseConfig::default(), None).unwrap();
        let (parts, ()) = http::Request::get("/events?channel=a")
            .header("last-event-id", first.id.to_token())
            .body(())
            .unwrap()
            .into_parts();
        let mut stream = endpoint.open(&parts).await.unwrap();
        assert!(stream.prelude.capacity() >= 100);
        // retry, 99 replayed events, `: connected`.
        for _ in 0..101 {
            std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx))
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(stream.prelude.capacity(), 0);
    }
}
