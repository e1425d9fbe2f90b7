//! One WebSocket connection: upgrade, greeting, subscribe with resume points, messages to
//! updates.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use realtime_core::DataFormat;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::config::ClientBuilder;
use crate::error::Error;
use crate::outlet::{Ended, Outlet, ReaderGone};
use crate::update::{ReceivedEvent, Update};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server message, as far as this client reads it.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    channel: Option<String>,
    id: Option<String>,
    event: Option<String>,
    format: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    reason: Option<String>,
    head: Option<String>,
    code: Option<String>,
    message: Option<String>,
    client_id: Option<String>,
}

pub(crate) async fn connection(config: &ClientBuilder, outlet: &Outlet) -> Ended {
    let mut connected = false;
    let error = match open(config).await {
        Ok(mut socket) => {
            let error = session(config, &mut socket, outlet, &mut connected).await;
            let _ = tokio::time::timeout(config.connect_timeout, socket.close(None)).await;
            error
        }
        Err(error) => Ok(error),
    };
    Ended { connected, error }
}

async fn open(config: &ClientBuilder) -> Result<Socket, Error> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::config("url", e.to_string()))?;
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_str(value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(Error::config("header", "not a valid HTTP header"));
        };
        request.headers_mut().append(name, value);
    }
    let limits = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    // Never left to tokio-tungstenite: its own TLS setup would use the process-wide provider.
    let connector = match &config.tls {
        Some(tls) => tokio_tungstenite::Connector::Rustls(tls.clone()),
        None => tokio_tungstenite::Connector::Plain,
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(limits),
        false,
        Some(connector),
    );
    match tokio::time::timeout(config.connect_timeout, connect).await {
        Err(_) => Err(Error::Connect(format!(
            "no upgrade within {:?}",
            config.connect_timeout
        ))),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let retry_after = response.headers().get("retry-after");
            Err(Error::refused(
                response.status().as_u16(),
                retry_after.and_then(|v| v.to_str().ok()),
                response.body().as_deref().unwrap_or_default(),
            ))
        }
        Ok(Err(e)) => Err(Error::connect(&e)),
    }
}

/// Reads the connection until it ends: the error that ended it, or the reader gone.
async fn session(
    config: &ClientBuilder,
    socket: &mut Socket,
    outlet: &Outlet,
    connected: &mut bool,
) -> Result<Error, ReaderGone> {
    let mut greeted = false;
    let mut client_id = None;
    loop {
        let message = match tokio::time::timeout(config.idle_timeout, socket.next()).await {
            Err(_) => return Ok(Error::Idle(config.idle_timeout)),
            Ok(None) => return Ok(Error::Connect("the connection ended".into())),
            Ok(Some(Err(tungstenite::Error::Capacity(e)))) => {
                return Ok(Error::Protocol(e.to_string()));
            }
            Ok(Some(Err(e))) => return Ok(Error::Connect(e.to_string())),
            Ok(Some(Ok(message))) => message,
        };
        let (text, bytes) = match &message {
            Message::Text(text) => (text.as_str(), None),
            Message::Binary(frame) => match frame.iter().position(|&b| b == b'\n') {
                Some(end) => match std::str::from_utf8(&frame[..end]) {
                    Ok(head) => (head, Some(frame.slice(end + 1..))),
                    Err(_) => return Ok(Error::Protocol("a binary message's line".into())),
                },
                None => return Ok(Error::Protocol("a binary message without its line".into())),
            },
            Message::Close(frame) => {
                return Ok(Error::Closed {
                    code: frame.as_ref().map_or(1005, |f| u16::from(f.code)),
                    reason: frame
                        .as_ref()
                        .map(|f| f.reason.to_string())
                        .unwrap_or_default(),
                });
            }
            // Answer a ping now: this loop only reads, and the pong goes out on a flush.
            Message::Ping(_) => {
                let _ = tokio::time::timeout(config.connect_timeout, socket.flush()).await;
                continue;
            }
            _ => continue,
        };
        let Ok(incoming) = serde_json::from_str::<Incoming<'_>>(text) else {
            return Ok(Error::Protocol(
                "a message that is not the protocol's".into(),
            ));
        };
        // A message without a type (a custom keepalive) is not ours to read.
        match incoming.kind.as_deref().unwrap_or_default() {
            "subscribed" if !greeted => {
                greeted = true;
                client_id = incoming.client_id;
                let subscribe = subscribe_message(config, outlet);
                let send = socket.send(Message::text(subscribe));
                match tokio::time::timeout(config.connect_timeout, send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Ok(Error::Connect(e.to_string())),
                    Err(_) => return Ok(Error::Connect("the subscribe was not taken".into())),
                }
            }
            // The answer to the subscribe: every channel joined, its replay delivered.
            "subscribed" if !*connected => {
                *connected = true;
                let client_id = client_id.take();
                outlet.send(Update::Connected { client_id }).await?;
            }
            // A refusal comes instead of the answer.
            "error" if !*connected => {
                return Ok(Error::SubscriptionRefused {
                    code: incoming.code.unwrap_or_default(),
                    message: incoming.message.unwrap_or_default(),
                });
            }
            "event" => {
                let Some(event) = event_of(incoming, bytes) else {
                    return Ok(Error::Protocol("an event without its fields".into()));
                };
                outlet.event(event).await?;
            }
            "gap" => {
                let (Some(channel), Some(reason), Some(head)) = (
                    incoming.channel,
                    incoming.reason,
                    incoming.head.filter(|h| crate::sse::is_position(h)),
                ) else {
                    return Ok(Error::Protocol("a gap without its fields".into()));
                };
                outlet.gap(channel, reason, head).await?;
            }
            // Keepalives, pongs, later answers.
            _ => {}
        }
    }
}

/// `subscribe` for every channel, each with its resume point; the backlog for the others.
fn subscribe_message(config: &ClientBuilder, outlet: &Outlet) -> String {
    let ids: HashMap<&str, String> = config
        .channels
        .iter()
        .filter_map(|c| Some((c.as_str(), outlet.resume_point(c)?)))
        .collect();
    let mut message = serde_json::json!({
        "type": "subscribe",
        "topics": config.channels,
        "last_event_ids": ids,
    });
    if let Some(count) = config.backlog {
        message["backlog"] = count.into();
    }
    message.to_string()
}

/// The event an `event` message carries; binary data follows its line in `bytes`.
fn event_of(incoming: Incoming<'_>, bytes: Option<Bytes>) -> Option<ReceivedEvent> {
    let (format, data) = match (incoming.format.as_deref(), bytes, incoming.data) {
        // Bytes after the line: binary, or a format this build does not know (read as bytes).
        (_, Some(bytes), _) => (DataFormat::Binary, bytes),
        (Some("json"), None, Some(raw)) => (
            DataFormat::Json,
            Bytes::copy_from_slice(raw.get().as_bytes()),
        ),
        (None | Some("text"), None, Some(raw)) => (
            DataFormat::Text,
            Bytes::from(serde_json::from_str::<String>(raw.get()).ok()?),
        ),
        (_, None, Some(raw)) => (
            DataFormat::Binary,
            Bytes::copy_from_slice(raw.get().as_bytes()),
        ),
        _ => return None,
    };
    Some(ReceivedEvent {
        channel: incoming.channel?,
        id: incoming.id.filter(|id| crate::sse::is_position(id))?,
        event_type: incoming.event.unwrap_or_else(|| "message".to_owned()),
        format,
        data,
    })
}
