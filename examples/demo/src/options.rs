//! Command-line options.

use std::net::SocketAddr;

/// What the demo is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The reconnection delay announced to browsers, in ms. Default 1,000.
    pub retry_ms: u32,
    /// Run on Redis (store and bus) instead of in memory, so several demo processes form one
    /// cluster. Default: none.
    pub redis_url: Option<String>,
    /// Run on Kafka as the bus (`HOST:PORT[,HOST:PORT…]`): alone, each process keeps its own
    /// history (per instance); with `--redis-url`, Redis is the shared store. Default: none.
    pub kafka_brokers: Option<String>,
    /// Run on SQS as the bus (an endpoint URL, e.g. moto's `http://127.0.0.1:4566`; AWS
    /// credentials from the environment, or moto's test ones for a local endpoint): alone,
    /// history per instance; with `--redis-url`, Redis is the shared store. Default: none.
    pub sqs_endpoint: Option<String>,
    /// Run on RabbitMQ as the bus (`amqp://user:password@host:port/vhost`): alone, history
    /// per instance; with `--redis-url`, Redis is the shared store. Default: none.
    pub amqp_url: Option<String>,
    /// Run on NATS as the bus (`nats://host:port`): alone, history per instance; with
    /// `--redis-url`, Redis is the shared store. Default: none.
    pub nats_url: Option<String>,
    /// Clients served at most. Default 10,000.
    pub max_connections: usize,
    /// Messages queued per client before it counts as a slow consumer. Default 256
    /// ([`realtime_core::ManagerConfig::client_buffer`]).
    pub client_buffer: usize,
    /// With `--redis-url`: keep history per instance (`--history per-instance`: Redis as the
    /// bus only, each process its own in-memory store) instead of in Redis (`shared`, the
    /// default). See [`realtime_core::History`].
    pub history: realtime_core::History,
    /// The web framework serving the endpoints: `axum` (default) or `actix`.
    pub framework: Framework,
}

/// The web framework the demo runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// axum, with `realtime-sse-axum`'s lean `Server` (the default).
    Axum,
    /// actix-web 4, with `realtime-sse-actix` and `realtime-ws-actix`.
    Actix,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            retry_ms: 1_000,
            redis_url: None,
            kafka_brokers: None,
            sqs_endpoint: None,
            amqp_url: None,
            nats_url: None,
            max_connections: 10_000,
            client_buffer: 256,
            history: realtime_core::History::Shared,
            framework: Framework::Axum,
        }
    }
}

impl Options {
    /// Usage text.
    pub const USAGE: &'static str = "usage: realtime-demo [--addr HOST:PORT] [--retry-ms N] [--redis-url redis://HOST:PORT] [--kafka-brokers HOST:PORT] [--sqs-endpoint URL] [--amqp-url amqp://…] [--nats-url nats://HOST:PORT] [--framework axum|actix] [--history shared|per-instance] [--max-connections N] [--client-buffer N]";

    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--addr" => {
                    let raw = value("--addr")?;
                    options.addr = raw.parse().map_err(|e| format!("--addr {raw:?}: {e}"))?;
                }
                "--retry-ms" => {
                    let raw = value("--retry-ms")?;
                    options.retry_ms = raw
                        .parse()
                        .map_err(|e| format!("--retry-ms {raw:?}: {e}"))?;
                }
                "--redis-url" => options.redis_url = Some(value("--redis-url")?),
                "--kafka-brokers" => options.kafka_brokers = Some(value("--kafka-brokers")?),
                "--sqs-endpoint" => options.sqs_endpoint = Some(value("--sqs-endpoint")?),
                "--amqp-url" => options.amqp_url = Some(value("--amqp-url")?),
                "--nats-url" => options.nats_url = Some(value("--nats-url")?),
                "--max-connections" => {
                    let raw = value("--max-connections")?;
                    options.max_connections = raw
                        .parse()
                        .map_err(|e| format!("--max-connections {raw:?}: {e}"))?;
                }
                "--client-buffer" => {
                    let raw = value("--client-buffer")?;
                    options.client_buffer = raw
                        .parse()
                        .map_err(|e| format!("--client-buffer {raw:?}: {e}"))?;
                }
                "--history" => {
                    options.history = match value("--history")?.as_str() {
                        "shared" => realtime_core::History::Shared,
                        "per-instance" => realtime_core::History::PerInstance,
                        other => {
                            return Err(format!(
                                "--history {other:?}: expected shared or per-instance"
                            ));
                        }
                    }
                }
                "--framework" => {
                    options.framework = match value("--framework")?.as_str() {
                        "axum" => Framework::Axum,
                        "actix" => Framework::Actix,
                        other => {
                            return Err(format!("--framework {other:?}: expected axum or actix"));
                        }
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let buses = [
            options.kafka_brokers.is_some(),
            options.sqs_endpoint.is_some(),
            options.amqp_url.is_some(),
            options.nats_url.is_some(),
        ];
        if buses.iter().filter(|&&given| given).count() > 1 {
            return Err(
                "--kafka-brokers, --sqs-endpoint, --amqp-url and --nats-url choose one bus: \
                 give at most one"
                    .into(),
            );
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(parse(&[]), Ok(Options::default()));
        let options = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--retry-ms",
            "250",
            "--redis-url",
            "redis://r:1",
            "--client-buffer",
            "1024",
        ])
        .unwrap();
        assert_eq!(options.client_buffer, 1024);
        assert_eq!((options.addr.port(), options.retry_ms), (0, 250));
        assert_eq!(options.redis_url.as_deref(), Some("redis://r:1"));
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--addr", "nowhere"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--client-buffer", "many"]).is_err());
        assert_eq!(
            parse(&["--history", "per-instance"]).map(|o| o.history),
            Ok(realtime_core::History::PerInstance)
        );
        assert!(parse(&["--history", "both"]).is_err());
        assert_eq!(
            parse(&["--framework", "actix"]).map(|o| o.framework),
            Ok(Framework::Actix)
        );
        assert!(parse(&["--framework", "rocket"]).is_err());
        assert_eq!(
            parse(&["--kafka-brokers", "k:9092"]).map(|o| o.kafka_brokers),
            Ok(Some("k:9092".into()))
        );
        assert_eq!(
            parse(&["--sqs-endpoint", "http://s:4566"]).map(|o| o.sqs_endpoint),
            Ok(Some("http://s:4566".into()))
        );
        assert_eq!(
            parse(&["--amqp-url", "amqp://m"]).map(|o| o.amqp_url),
            Ok(Some("amqp://m".into()))
        );
        assert_eq!(
            parse(&["--nats-url", "nats://n:4222"]).map(|o| o.nats_url),
            Ok(Some("nats://n:4222".into()))
        );
        let two = parse(&["--nats-url", "nats://n", "--kafka-brokers", "k:9092"]);
        assert!(two.is_err_and(|e| e.contains("one bus")));
    }
}
