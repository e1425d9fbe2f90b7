//! # realtime-demo
//!
//! A server with everything wired, on the in-memory store and bus or (`--redis-url`) on Redis,
//! where several demo processes share history and fan-out; on axum, or with
//! `--framework actix` on actix-web (the same page and API):
//! - `GET /` — a page that subscribes with `EventSource` (or, with `?mode=ws`, a WebSocket),
//!   shows events and gap signals, resumes after a cut, and publishes from a form;
//! - `GET /events?channel=…` — the SSE endpoint ([`realtime_sse_axum`]); the demo takes
//!   `tenant`/`subject` from the query (a real deployment sets an authorization hook);
//! - `GET /ws` — the WebSocket endpoint ([`realtime_ws`]), same routing rule;
//! - `POST /publish` — `{"channel", "type"?, "data", "tenant"?, "subject"?}` (data: any JSON
//!   value or a string) → `{"id", "channel"}`, or 400 with a JSON error;
//! - `GET /metrics` — Prometheus text; `GET /stats` — `{"connections", "channels"}`;
//! - `GET /healthz` — 200 while the process answers; `GET /readyz` — 200 when the store and
//!   bus are reachable, else 503 with what failed ([`realtime_core::Manager::ready`]);
//! - `POST /admin/disconnect-all` — ends every stream (browsers reconnect and resume).
//!
//! What a deployment must add: authentication on `/publish` and `/admin/*` (the demo has
//! none; `/publish` takes only `application/json`, so a cross-site form cannot post to it),
//! and an authorization hook instead of trusting `tenant`/`subject` from the query.

mod actix;
mod api;
mod connect;
mod options;
mod routes;
mod settings;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use realtime_amqp::AmqpBus;
use realtime_core::{Manager, ManagerConfig};
use realtime_kafka::KafkaBus;
use realtime_nats::NatsBus;
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};
use realtime_sqs::{SqsBus, SqsBusConfig, SqsCredentials};
use realtime_sse_axum::{SseConfig, SseHandler};
use realtime_ws::{WsConfig, WsHandler};

pub use options::{Framework, KafkaOptions, NatsOptions, Options, TlsFiles};

pub(crate) const PAGE: &str = include_str!("page.html");
/// The JavaScript client (`clients/js`), served at `/realtime.js` for the page.
pub(crate) const CLIENT_JS: &str = include_str!("../../../clients/js/realtime.js");

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    manager: Manager,
    metrics: PrometheusHandle,
}

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// The manager the demo runs on: in-memory store and bus; Redis with `--redis-url` (as
/// store and bus, or with `--history per-instance` as the bus only); Kafka as the bus with
/// `--kafka-brokers`, SQS with `--sqs-endpoint`, RabbitMQ with `--amqp-url` or NATS with
/// `--nats-url` (history per instance, or Redis as the shared store with `--redis-url` too).
pub async fn manager(options: &Options) -> realtime_core::Result<Manager> {
    let mut config = ManagerConfig::default();
    config.max_connections = options.max_connections;
    config.client_buffer = options.client_buffer;
    let builder = Manager::builder().config(config);
    if let Some(brokers) = &options.kafka_brokers {
        let bus = KafkaBus::connect(connect::kafka(options, brokers)?).await?;
        tracing::info!(brokers, "running on a Kafka bus");
        return on_bus(builder, Arc::new(bus), options).await;
    }
    if let Some(endpoint) = &options.sqs_endpoint {
        let mut config = SqsBusConfig::local(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            config.credentials = SqsCredentials::Environment;
        }
        let bus = SqsBus::connect(config).await?;
        tracing::info!(endpoint, "running on an SQS bus");
        return on_bus(builder, Arc::new(bus), options).await;
    }
    if let Some(url) = &options.amqp_url {
        let bus = AmqpBus::connect(connect::amqp(options, url)?).await?;
        tracing::info!(url = %realtime_core::driver::redact_url(url), "running on a RabbitMQ bus");
        return on_bus(builder, Arc::new(bus), options).await;
    }
    if let Some(url) = &options.nats_url {
        let bus = NatsBus::connect(connect::nats(options, url)?).await?;
        tracing::info!(url = %realtime_core::driver::redact_url(url), "running on a NATS bus");
        return on_bus(builder, Arc::new(bus), options).await;
    }
    let Some(url) = &options.redis_url else {
        return builder.build();
    };
    let mut bus_config = RedisBusConfig::default();
    bus_config.url = url.clone();
    bus_config.root_certificate_pem = connect::redis_ca(options)?;
    let bus = RedisBus::connect(bus_config).await?;
    let builder = builder.history(options.history).bus(Arc::new(bus));
    if options.history == realtime_core::History::PerInstance {
        tracing::info!(url = %realtime_redis::redact(url), "running on a Redis bus, history per instance");
        return builder.build();
    }
    let mut store_config = RedisStoreConfig::default();
    store_config.url = url.clone();
    store_config.root_certificate_pem = connect::redis_ca(options)?;
    let store = RedisStore::connect(store_config).await?;
    tracing::info!(url = %realtime_redis::redact(url), "running on Redis");
    builder.store(Arc::new(store)).build()
}

/// A bus that keeps no history (Kafka, SQS, RabbitMQ, NATS): alone with history per instance, or beside a
/// shared Redis store.
async fn on_bus(
    builder: realtime_core::ManagerBuilder,
    bus: Arc<dyn realtime_core::Bus>,
    options: &Options,
) -> realtime_core::Result<Manager> {
    let builder = builder.bus(bus);
    let Some(url) = &options.redis_url else {
        tracing::info!("history per instance");
        return builder.history(realtime_core::History::PerInstance).build();
    };
    if options.history == realtime_core::History::PerInstance {
        return Err(realtime_core::Error::InvalidConfig {
            field: "history",
            reason: "--history per-instance with another bus leaves --redis-url unused".into(),
        });
    }
    let mut store_config = RedisStoreConfig::default();
    store_config.url = url.clone();
    store_config.root_certificate_pem = connect::redis_ca(options)?;
    let store = RedisStore::connect(store_config).await?;
    tracing::info!(url = %realtime_redis::redact(url), "with a shared Redis store");
    builder.store(Arc::new(store)).build()
}

/// The demo's routes over `manager`, announcing the demo's default reconnection delay.
pub fn app(manager: Manager) -> realtime_core::Result<Router> {
    app_with(manager, Options::default().retry_ms)
}

/// The demo's endpoint configurations (on either framework).
pub(crate) fn endpoint_configs(retry_ms: u32) -> (SseConfig, WsConfig) {
    let mut sse_config = SseConfig::default();
    sse_config.retry_ms = retry_ms;
    // Demo only: trust the query for routing. Production code sets `authorize` instead.
    sse_config.routing_from_query = true;
    let mut ws_config = WsConfig::default();
    ws_config.routing_from_query = true;
    ws_config.keepalive_interval = Some(std::time::Duration::from_secs(20));
    (sse_config, ws_config)
}

/// [`app`] announcing `retry_ms` as the SSE reconnection delay.
pub fn app_with(manager: Manager, retry_ms: u32) -> realtime_core::Result<Router> {
    let (sse_config, ws_config) = endpoint_configs(retry_ms);
    let sse = SseHandler::builder(manager.clone())
        .config(sse_config)
        .build()?;
    let ws = WsHandler::builder(manager.clone())
        .config(ws_config)
        .build()?;
    let state = AppState {
        manager,
        metrics: metrics_handle(),
    };
    Ok(Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/realtime.js",
            get(|| async {
                (
                    [("content-type", "text/javascript; charset=utf-8")],
                    CLIENT_JS,
                )
            }),
        )
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/publish", post(routes::publish))
        .route("/stats", get(routes::stats))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/admin/disconnect-all", post(routes::disconnect_all))
        .layer(axum::middleware::from_fn(routes::one_host))
        .with_state(state))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn termination() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    () = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => interrupt.await,
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}

/// Serves on axum until Ctrl-C or SIGTERM, then closes the manager so every stream ends
/// cleanly. (`--framework actix`: see [`run_actix`].)
pub async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let manager = manager(&options).await?;
    let app = app_with(manager.clone(), options.retry_ms)?;
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    // Scripts (and the browser test) read this line to find the port.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{addr}");
    }
    tracing::info!(%addr, "realtime demo listening");
    // Every stream ends first (SSE streams finish, WebSocket sessions send 1001), then the
    // server stops, then the sessions still writing their close frames are waited for.
    let shutdown = manager.close_on(termination());
    // Event streams are written by realtime-sse-axum's lean server; the rest is hyper's.
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    manager
        .drained_within(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}

/// Serves on actix-web (`--framework actix`): the same page and API. Runs inside an actix
/// `System` (see `main.rs`).
pub async fn run_actix(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let manager = manager(&options).await?;
    actix::run(options, manager).await
}
