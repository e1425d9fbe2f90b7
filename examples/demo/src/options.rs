//! The demo's options, from flags and the environment (see [`crate::settings`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::settings;

/// A TLS setting's files: a CA to trust, and a client certificate with its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA certificates to trust (`--…-ca-file`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (`--…-client-cert-file`).
    pub client_cert_file: Option<PathBuf>,
    /// PEM key of the client certificate (`--…-client-key-file`).
    pub client_key_file: Option<PathBuf>,
}

/// Kafka's connection settings beyond the brokers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    /// TLS to the brokers (`--kafka-tls true`; implied by any of [`tls`](Self::tls)).
    pub tls_on: bool,
    /// TLS files.
    pub tls: TlsFiles,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (`--kafka-sasl-mechanism`).
    pub sasl_mechanism: Option<String>,
    /// The SASL user (`--kafka-sasl-username`).
    pub sasl_username: Option<String>,
    /// The SASL password (`REALTIME_KAFKA_SASL_PASSWORD[_FILE]`); never printed.
    pub sasl_password: Option<String>,
    /// Replicas of a topic the bus creates (`--kafka-replication`); default the broker's.
    pub replication: Option<i32>,
}

/// NATS's credentials and TLS beyond the URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsOptions {
    /// User (`--nats-user`), with [`password`](Self::password).
    pub user: Option<String>,
    /// Password; never printed.
    pub password: Option<String>,
    /// Token; never printed.
    pub token: Option<String>,
    /// NKey seed; never printed.
    pub nkey_seed: Option<String>,
    /// A `.creds` file (user JWT and seed).
    pub creds_file: Option<PathBuf>,
    /// TLS files (any of them requires TLS).
    pub tls: TlsFiles,
}

/// What the demo is started with.
#[derive(Clone, PartialEq, Eq)]
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
    /// A private CA for a `rediss://` URL (`--redis-ca-file`).
    pub redis_ca_file: Option<PathBuf>,
    /// Kafka's TLS and SASL settings.
    pub kafka: KafkaOptions,
    /// TLS files for an `amqps://` URL.
    pub amqp_tls: TlsFiles,
    /// NATS's credentials and TLS.
    pub nats: NatsOptions,
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
            redis_ca_file: None,
            kafka: KafkaOptions::default(),
            amqp_tls: TlsFiles::default(),
            nats: NatsOptions::default(),
        }
    }
}

/// Shows whether a secret is set, never its value.
fn hidden(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<hidden>")
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaOptions")
            .field("tls_on", &self.tls_on)
            .field("tls", &self.tls)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &hidden(&self.sasl_password))
            .field("replication", &self.replication)
            .finish()
    }
}

impl fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsOptions")
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("token", &hidden(&self.token))
            .field("nkey_seed", &hidden(&self.nkey_seed))
            .field("creds_file", &self.creds_file)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |url: &Option<String>| url.as_deref().map(realtime_core::driver::redact_url);
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("retry_ms", &self.retry_ms)
            .field("redis_url", &redacted(&self.redis_url))
            .field("kafka_brokers", &self.kafka_brokers)
            .field("sqs_endpoint", &self.sqs_endpoint)
            .field("amqp_url", &redacted(&self.amqp_url))
            .field("nats_url", &redacted(&self.nats_url))
            .field("max_connections", &self.max_connections)
            .field("client_buffer", &self.client_buffer)
            .field("history", &self.history)
            .field("framework", &self.framework)
            .field("redis_ca_file", &self.redis_ca_file)
            .field("kafka", &self.kafka)
            .field("amqp_tls", &self.amqp_tls)
            .field("nats", &self.nats)
            .finish()
    }
}

impl Options {
    /// Usage text: every flag and its environment variable.
    pub fn usage() -> String {
        settings::usage()
    }

    /// The options of these flags alone (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        Self::from_sources(&|_| None, args)
    }

    /// The options of the process's environment (`REALTIME_*`), then of these flags.
    pub fn from_env_and_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        Self::from_sources(&|name| std::env::var(name).ok(), args)
    }

    /// The options of `env` (a variable's value by name), then of `args`.
    pub fn from_sources(
        env: &dyn Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let mut given = settings::collect(env, args)?;
        let mut options = Options::default();
        let mut take = |name: &str| given.remove(name);
        if let Some(raw) = take("addr") {
            options.addr = parsed("addr", &raw)?;
        }
        if let Some(raw) = take("retry-ms") {
            options.retry_ms = parsed("retry-ms", &raw)?;
        }
        if let Some(raw) = take("max-connections") {
            options.max_connections = parsed("max-connections", &raw)?;
        }
        if let Some(raw) = take("client-buffer") {
            options.client_buffer = parsed("client-buffer", &raw)?;
        }
        if let Some(raw) = take("history") {
            options.history = match raw.as_str() {
                "shared" => realtime_core::History::Shared,
                "per-instance" => realtime_core::History::PerInstance,
                other => {
                    return Err(format!(
                        "--history {other:?}: expected shared or per-instance"
                    ));
                }
            };
        }
        if let Some(raw) = take("framework") {
            options.framework = match raw.as_str() {
                "axum" => Framework::Axum,
                "actix" => Framework::Actix,
                other => return Err(format!("--framework {other:?}: expected axum or actix")),
            };
        }
        options.redis_url = take("redis-url");
        options.redis_ca_file = take("redis-ca-file").map(PathBuf::from);
        options.kafka_brokers = take("kafka-brokers");
        options.sqs_endpoint = take("sqs-endpoint");
        options.amqp_url = take("amqp-url");
        options.nats_url = take("nats-url");
        let tls_files = |take: &mut dyn FnMut(&str) -> Option<String>, prefix: &str| TlsFiles {
            ca_file: take(&format!("{prefix}-ca-file")).map(PathBuf::from),
            client_cert_file: take(&format!("{prefix}-client-cert-file")).map(PathBuf::from),
            client_key_file: take(&format!("{prefix}-client-key-file")).map(PathBuf::from),
        };
        options.kafka = KafkaOptions {
            tls_on: match take("kafka-tls").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(format!("--kafka-tls {other:?}: expected true or false"));
                }
            },
            tls: tls_files(&mut take, "kafka"),
            sasl_mechanism: take("kafka-sasl-mechanism"),
            sasl_username: take("kafka-sasl-username"),
            sasl_password: take("kafka-sasl-password"),
            replication: take("kafka-replication")
                .map(|raw| parsed("kafka-replication", &raw))
                .transpose()?,
        };
        options.amqp_tls = tls_files(&mut take, "amqp");
        options.nats = NatsOptions {
            user: take("nats-user"),
            password: take("nats-password"),
            token: take("nats-token"),
            nkey_seed: take("nats-nkey-seed"),
            creds_file: take("nats-creds-file").map(PathBuf::from),
            tls: tls_files(&mut take, "nats"),
        };
        debug_assert!(given.is_empty(), "settings left unread: {:?}", given.keys());
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

/// `raw` as the value of setting `name`; the error names both (a plain setting's value).
fn parsed<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    raw.parse().map_err(|e| format!("--{name} {raw:?}: {e}"))
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
