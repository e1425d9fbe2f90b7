//! How a client connects: transport, channels, where to resume, timings and limits.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::tls::TlsRoots;

/// Which endpoint the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Server-Sent Events: one channel per connection (`?channel=`), resumed with
    /// `Last-Event-ID`. Data arrives as text (binary data as base64: decode it where the event
    /// type says so).
    Sse,
    /// The WebSocket protocol: any number of channels, each resumed after its own last id;
    /// JSON and binary data arrive as such.
    WebSocket,
}

/// The settings of a [`RealtimeClient`](crate::RealtimeClient), made with
/// [`RealtimeClient::websocket`](crate::RealtimeClient::websocket) or
/// [`RealtimeClient::sse`](crate::RealtimeClient::sse); [`build`](ClientBuilder::build) checks
/// them and starts the client.
#[derive(Clone)]
pub struct ClientBuilder {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    pub(crate) channels: Vec<String>,
    pub(crate) last_event_ids: HashMap<String, String>,
    pub(crate) backlog: Option<usize>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_message_bytes: usize,
    pub(crate) buffer: usize,
    pub(crate) tls_roots: TlsRoots,
    /// Made by `build` for `https://`/`wss://` URLs.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials (a Bearer token): only their names are shown.
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClientBuilder")
            .field("url", &redacted(&self.url))
            .field("transport", &self.transport)
            .field("channels", &self.channels)
            .field("last_event_ids", &self.last_event_ids)
            .field("backlog", &self.backlog)
            .field("headers", &headers)
            .field("initial_delay", &self.initial_delay)
            .field("max_delay", &self.max_delay)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("buffer", &self.buffer)
            .field("system_roots", &self.tls_roots.native)
            .field("added_roots", &self.tls_roots.pem.len())
            .finish()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>, transport: Transport) -> Self {
        ClientBuilder {
            url: url.into(),
            transport,
            channels: Vec::new(),
            last_event_ids: HashMap::new(),
            backlog: None,
            headers: Vec::new(),
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_message_bytes: 16 << 20,
            buffer: 256,
            tls_roots: TlsRoots::default(),
            tls: None,
        }
    }

    /// The transport this builder was made for.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Adds a channel (SSE: exactly one).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channels.push(channel.into());
        self
    }

    /// Resumes `channel` after `id` (kept from an earlier run); subscribes to it too.
    pub fn resume(mut self, channel: impl Into<String>, id: impl Into<String>) -> Self {
        let channel = channel.into();
        if !self.channels.contains(&channel) {
            self.channels.push(channel.clone());
        }
        self.last_event_ids.insert(channel, id.into());
        self
    }

    /// For a channel with no last id: its `count` newest events first. Default none.
    pub fn backlog(mut self, count: usize) -> Self {
        self.backlog = Some(count);
        self
    }

    /// A header sent with every connection (e.g. `authorization`). Its value is never logged
    /// or shown by `Debug`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Reconnection delays: the first bound and the largest; each delay is random between
    /// half the bound and the bound, which doubles per failed attempt. Default 500 ms, 30 s.
    pub fn reconnect_delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max;
        self
    }

    /// How long a connection attempt may take. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A connection with no traffic for this long (the server's heartbeats included: 15 s by
    /// default) is taken as dead and replaced. Traffic is whole messages (over SSE whole
    /// frames, so a heartbeat must end its frame with a blank line, as `:\n\n`); an SSE
    /// event still arriving counts while it comes at 1 KiB/s or more (each KiB received
    /// buys a second), so a large event on a slow link gets through and a server trickling
    /// bytes that finish nothing is idle. Default 90 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The largest message (or SSE event, as written on the wire) accepted; past it the
    /// connection is dropped as a protocol error. Default 16 MiB: a 1 MiB event (the server's
    /// default limit) may take several times its size once escaped as JSON or split into
    /// `data:` lines.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Updates held for the reader before the client stops reading the socket (the server
    /// then applies its slow-consumer policy). Default 256.
    pub fn buffer(mut self, updates: usize) -> Self {
        self.buffer = updates;
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates) for
    /// `https://` and `wss://`, beside the system's: a private CA (the server's certificate
    /// itself works only if it is not marked as a CA; a generated test CA that signs the
    /// server's certificate always does). Checked by [`build`](ClientBuilder::build).
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_roots.pem.push(pem.into());
        self
    }

    /// Whether the operating system's root certificates are trusted (read at build; honours
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`). Default true; turn it off to trust only the
    /// roots added with [`root_certificate_pem`](ClientBuilder::root_certificate_pem).
    pub fn system_roots(mut self, trusted: bool) -> Self {
        self.tls_roots.native = trusted;
        self
    }

    /// Whether the URL asks for TLS (`https://`, `wss://`).
    pub(crate) fn uses_tls(&self) -> bool {
        self.url.starts_with("https://") || self.url.starts_with("wss://")
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let schemes: &[&str] = match self.transport {
            Transport::Sse => &["http://", "https://"],
            Transport::WebSocket => &["ws://", "wss://"],
        };
        if !schemes.iter().any(|s| self.url.starts_with(s)) {
            return Err(Error::config(
                "url",
                format!("must start with {}", schemes.join(" or ")),
            ));
        }
        let base = self.url.split('#').next().unwrap_or_default();
        match base.parse::<hyper::Uri>() {
            // Credentials in the URL would be sent by neither transport (and would reach
            // the HTTP client's connection-pool logs): they belong in a header.
            Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
                return Err(Error::config(
                    "url",
                    "user and password in the URL are not sent: use header(\"authorization\", …)",
                ));
            }
            Ok(uri) if uri.host().is_some_and(|host| !host.is_empty()) => {}
            // The error may quote the URL, and the URL may hold a token.
            _ => {
                return Err(Error::config(
                    "url",
                    "not a valid URL with a host (an international name: use its xn-- form)",
                ));
            }
        }
        match (self.transport, self.channels.len()) {
            (_, 0) => return Err(Error::config("channels", "name at least one")),
            (Transport::Sse, n) if n > 1 => {
                return Err(Error::config(
                    "channels",
                    "SSE streams one channel per connection",
                ));
            }
            _ => {}
        }
        for channel in &self.channels {
            realtime_core::routing::validate_channel(channel, usize::MAX)
                .map_err(|e| Error::config("channels", e.to_string()))?;
        }
        if self.initial_delay.is_zero() || self.max_delay < self.initial_delay {
            return Err(Error::config(
                "reconnect_delays",
                "the first must be positive and at most the largest",
            ));
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(field, "must be positive"));
            }
        }
        for (channel, id) in &self.last_event_ids {
            // Sent back as a header or a query parameter on every reconnect.
            if id.is_empty() || id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::config(
                    "resume",
                    format!("the id for {channel:?} must be 1 to 256 visible ASCII characters"),
                ));
            }
        }
        for (name, value) in &self.headers {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let value_ok = value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            if !name_ok || !value_ok {
                return Err(Error::config(
                    "header",
                    format!("{name:?} is not a valid HTTP header"),
                ));
            }
        }
        if self.max_message_bytes < 1024 || self.buffer == 0 {
            return Err(Error::config(
                "max_message_bytes/buffer",
                "at least 1 KiB and 1 update",
            ));
        }
        Ok(())
    }
}

/// The URL without its query and credentials (either may hold a token).
fn redacted(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}
