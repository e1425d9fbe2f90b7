//! One SSE connection: request, refusal or stream, frames to updates.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::ACCEPT;
use hyper::{Request, Response};
use realtime_core::DataFormat;
use realtime_core::sse::{Decoder, Frame, GAP_EVENT};
use serde::Deserialize;

use crate::config::ClientBuilder;
use crate::error::{Error, MAX_REFUSAL_BODY};
use crate::http::{HttpClient, next_chunk};
use crate::outlet::{Ended, Outlet, ReaderGone};
use crate::update::{ReceivedEvent, Update};

pub(crate) async fn connection(
    config: &ClientBuilder,
    http: &HttpClient,
    outlet: &Outlet,
) -> Ended {
    let mut connected = false;
    let error = stream(config, http, outlet, &mut connected).await;
    Ended { connected, error }
}

/// Runs the stream until it ends: the error that ended it, or the reader gone.
async fn stream(
    config: &ClientBuilder,
    http: &HttpClient,
    outlet: &Outlet,
    connected: &mut bool,
) -> Result<Error, ReaderGone> {
    let channel = &config.channels[0];
    let resume = outlet.resume_point(channel);
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("channel", channel);
        if let (None, Some(count)) = (&resume, config.backlog) {
            query.append_pair("backlog", &count.to_string());
        }
        query.finish()
    };
    // `validate` made sure the URL parses with any query appended this way.
    let base = config.url.split('#').next().unwrap_or_default();
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut request =
        Request::get(format!("{base}{separator}{query}")).header(ACCEPT, "text/event-stream");
    if let Some(id) = &resume {
        request = request.header("last-event-id", id);
    }
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    let request = match request.body(String::new()) {
        Ok(request) => request,
        Err(e) => return Ok(Error::config("header", e.to_string())),
    };
    let response = match tokio::time::timeout(config.connect_timeout, http.request(request)).await {
        Err(_) => {
            return Ok(Error::Connect(format!(
                "no answer within {:?}",
                config.connect_timeout
            )));
        }
        Ok(Err(e)) => return Ok(Error::connect(&e)),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return Ok(refusal(response).await);
    }
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return Ok(Error::Protocol("the answer is not an event stream".into()));
    }
    let mut body = response.into_body();
    let mut decoder = Decoder::new();
    let mut client_id = None;
    // Life is a whole frame (an event, a heartbeat), or a frame in progress that keeps
    // coming at a useful rate: a large event on a slow link may take longer than the idle
    // timeout, a server trickling bytes that finish nothing may not.
    let mut idle_at = Instant::now() + config.idle_timeout;
    let mut frame_began: Option<Instant> = None;
    loop {
        let chunk = match tokio::time::timeout_at(idle_at, next_chunk(&mut body)).await {
            Err(_) => return Ok(Error::Idle(config.idle_timeout)),
            Ok(None) => return Ok(Error::Connect("the server ended the stream".into())),
            Ok(Some(Err(e))) => return Ok(Error::connect(&e)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let frames = decoder.feed(&chunk);
        let whole = !frames.is_empty();
        for frame in frames {
            if let Err(error) = on_frame(channel, frame, outlet, connected, &mut client_id).await? {
                return Ok(error);
            }
        }
        // After the frames are handed on: a slow reader does not use up the server's time.
        let now = Instant::now();
        let open = decoder.pending_bytes();
        if whole {
            idle_at = now + config.idle_timeout;
            frame_began = (open > 0).then_some(now);
        } else if open > 0 {
            let began = *frame_began.get_or_insert(now);
            idle_at = began + config.idle_timeout + slow_frame_allowance(open);
        }
        if decoder.pending_bytes() > config.max_message_bytes {
            return Ok(Error::Protocol(format!(
                "an event over {} bytes",
                config.max_message_bytes
            )));
        }
    }
}

/// The slowest rate an unfinished frame may arrive at and still count as life: each KiB of
/// it received buys a second beyond the idle timeout (1 MiB may take 17 minutes).
const SLOW_FRAME_BYTES_PER_SECOND: usize = 1024;

fn slow_frame_allowance(open_bytes: usize) -> Duration {
    Duration::from_secs((open_bytes / SLOW_FRAME_BYTES_PER_SECOND) as u64)
}

#[derive(Deserialize)]
struct GapData {
    channel: String,
    reason: String,
    head: String,
}

/// Hands on what one frame says; `Ok(Err(_))` when it breaks the protocol.
async fn on_frame(
    channel: &str,
    frame: Frame,
    outlet: &Outlet,
    connected: &mut bool,
    client_id: &mut Option<String>,
) -> Result<Result<(), Error>, ReaderGone> {
    if !*connected {
        // The first frame names the client (`: client_id <id>`); `: connected` follows the
        // replay.
        for comment in &frame.comments {
            if let Some(id) = comment.strip_prefix("client_id ") {
                *client_id = Some(id.to_owned());
            } else if comment == "connected" {
                *connected = true;
                let client_id = client_id.take();
                outlet.send(Update::Connected { client_id }).await?;
            }
        }
    }
    let Some(data) = frame.data else {
        return Ok(Ok(()));
    };
    if frame.event.as_deref() == Some(GAP_EVENT) {
        let gap = serde_json::from_str::<GapData>(&data).ok();
        let Some(gap) = gap.filter(|g| is_position(&g.head)) else {
            return Ok(Err(Error::Protocol(
                "a gap signal that is not the protocol's".into(),
            )));
        };
        outlet.gap(gap.channel, gap.reason, gap.head).await?;
        return Ok(Ok(()));
    }
    let Some(id) = frame.id.filter(|id| is_position(id)) else {
        return Ok(Err(Error::Protocol("an event without a valid id".into())));
    };
    let event = ReceivedEvent {
        channel: channel.to_owned(),
        id,
        event_type: frame.event.unwrap_or_else(|| "message".to_owned()),
        format: DataFormat::Text,
        data: Bytes::from(data),
    };
    outlet.event(event).await?;
    Ok(Ok(()))
}

/// The error for a response that is not a stream: its status, the start of its body and
/// its `Retry-After`.
async fn refusal(response: Response<Incoming>) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    let mut chunks = response.into_body();
    // The whole body within 5 s: a server trickling it cannot hold the client.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, next_chunk(&mut chunks)).await
    {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_REFUSAL_BODY - body.len())]);
        if body.len() >= MAX_REFUSAL_BODY {
            break;
        }
    }
    Error::refused(status, retry_after.as_deref(), &body)
}

/// Whether `id` is a position token (`<epoch hex>-<offset>`) of a sane length: anything else
/// is kept and sent back on every reconnect.
pub(crate) fn is_position(id: &str) -> bool {
    id.len() <= 64 && realtime_core::Position::parse(id).is_ok()
}
