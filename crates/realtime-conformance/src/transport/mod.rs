//! The transport suite: black-box tests of a running server's SSE and WebSocket endpoints,
//! as public async functions, so that every framework adapter (axum, actix-web) is held to
//! the same behaviour — a difference between two frameworks fails a test.
//!
//! A framework's test crate implements [`Serve`] (start a server on a free port with the
//! endpoints built from [`Setup`], SSE at `/events` and WebSocket at `/ws`) and generates one
//! test per function with [`transport_tests!`](crate::transport_tests). Events are published
//! through the manager, in process; everything else goes over the sockets.

mod client;
mod closing;
mod hostile;
mod sse;
mod ws;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use realtime_core::{Manager, ManagerConfig};
use realtime_http::SseConfig;
use realtime_http::ws::{OriginPolicy, WsConfig};

pub use closing::*;
pub use hostile::*;
pub use sse::*;
pub use ws::*;

/// The one origin the WebSocket endpoint admits.
pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// What a server under test is built from.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The manager the endpoints serve (at most [`Setup::MAX_CONNECTIONS`] clients).
    pub manager: Manager,
    /// The SSE endpoint's configuration (a short heartbeat: a framework that notices a gone
    /// client only when it writes notices it soon).
    pub sse: SseConfig,
    /// The WebSocket endpoint's configuration (origin allow-list [`ALLOWED_ORIGIN`], a 1 KiB
    /// read limit, a short heartbeat, a 64 KiB write buffer).
    pub ws: WsConfig,
}

impl Setup {
    /// Clients one server admits.
    pub const MAX_CONNECTIONS: usize = 3;
    /// How long a write may wait for a client to read (the server's own write timeout, where
    /// it has one, is set to this too).
    pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

    /// A fresh manager and the suite's configurations.
    pub fn new() -> Self {
        let mut config = ManagerConfig::default();
        config.max_connections = Self::MAX_CONNECTIONS;
        let manager = Manager::builder()
            .config(config)
            .build()
            .unwrap_or_else(|e| panic!("manager: {e}"));
        let mut sse = SseConfig::default();
        sse.heartbeat_interval = Duration::from_millis(100);
        sse.write_timeout = Self::WRITE_TIMEOUT;
        let mut ws = WsConfig::default();
        ws.origin_policy = OriginPolicy::allow_list([ALLOWED_ORIGIN]);
        ws.read_limit = 1024;
        ws.heartbeat_interval = Duration::from_millis(100);
        ws.write_timeout = Self::WRITE_TIMEOUT;
        ws.max_write_buffer = 64 * 1024;
        Setup { manager, sse, ws }
    }
}

impl Default for Setup {
    fn default() -> Self {
        Setup::new()
    }
}

/// A framework serving the endpoints of a [`Setup`].
pub trait Serve {
    /// Starts a server on `127.0.0.1` and a free port, SSE at `/events`, WebSocket at `/ws`;
    /// resolves to its base URL (`http://127.0.0.1:PORT`) once it accepts connections.
    fn serve(&self, setup: &Setup) -> Pin<Box<dyn Future<Output = String> + '_>>;
}

/// A server under test: its base URL and manager.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The manager its endpoints serve.
    pub manager: Manager,
}

impl Server {
    /// Starts `framework`'s server on a fresh [`Setup`].
    pub async fn start(framework: &dyn Serve) -> Server {
        let setup = Setup::new();
        let base = framework.serve(&setup).await;
        Server {
            base,
            manager: setup.manager,
        }
    }

    fn sse(&self, query: &str) -> String {
        format!("{}/events?{query}", self.base)
    }

    fn ws(&self, query: &str) -> String {
        format!("{}/ws?{query}", self.base.replacen("http://", "ws://", 1))
    }
}

/// Generates one test per transport function for a framework. `$serve` is an expression
/// giving a [`Serve`]; `$test` the test attribute that runs the framework's runtime (e.g.
/// `actix_web::test`, or `tokio::test`).
#[macro_export]
macro_rules! transport_tests {
    ($serve:expr, #[$test:meta]) => {
        $crate::transport_tests!(@each $serve, #[$test];
            sse_bad_requests, sse_headers_replay_and_live, sse_gap_signal, sse_connection_limit,
            sse_shutdown, ws_checks_before_the_upgrade, ws_resume_and_protocol, ws_too_big,
            ws_shutdown, sse_never_reading_client, ws_never_reading_client, ws_tiny_fragments,
            ws_client_closes, head_requests, sse_backlog, ws_backlog, sse_data_formats,
            ws_data_formats, ws_big_frame_sees_1009, ws_protocol_violation_sees_1002,
            ws_malformed_key_is_refused, half_closed_requests_are_answered,
            two_host_headers_are_refused
        );
    };
    (@each $serve:expr, #[$test:meta]; $($name:ident),* $(,)?) => {
        $(
            #[$test]
            async fn $name() {
                let server = $crate::transport::Server::start(&$serve).await;
                $crate::transport::$name(&server).await;
            }
        )*
    };
}
