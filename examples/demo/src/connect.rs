//! The backends' configurations from the demo's options: URLs, TLS files and credentials.

use std::path::Path;

use realtime_amqp::AmqpBusConfig;
use realtime_core::{Error, Result};
use realtime_kafka::{KafkaBusConfig, KafkaTls, Pem, Sasl};
use realtime_nats::{NatsBusConfig, NatsCredentials, NatsTls};

use crate::options::{Options, TlsFiles};

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

/// The PEM file of setting `field`, read now; the error names the file, never its contents.
fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| invalid(field, format!("{} cannot be read: {e}", path.display())))
}

/// The Kafka bus's configuration: brokers, TLS (`--kafka-tls` or any TLS file), SASL.
pub(crate) fn kafka(options: &Options, brokers: &str) -> Result<KafkaBusConfig> {
    let kafka = &options.kafka;
    let mut config = KafkaBusConfig::new(brokers);
    config.replication = kafka.replication;
    let files = &kafka.tls;
    if kafka.tls_on || *files != TlsFiles::default() {
        let mut tls = KafkaTls::default();
        tls.ca = files.ca_file.clone().map(Pem::File);
        tls.client_certificate = files.client_cert_file.clone().map(Pem::File);
        tls.client_key = files.client_key_file.clone().map(Pem::File);
        config.tls = Some(tls);
    }
    config.sasl = match (
        &kafka.sasl_mechanism,
        &kafka.sasl_username,
        &kafka.sasl_password,
    ) {
        (None, None, None) => None,
        (mechanism, Some(username), Some(password)) => {
            let (username, password) = (username.clone(), password.clone());
            Some(match mechanism.as_deref().unwrap_or("PLAIN") {
                "PLAIN" => Sasl::plain(username, password),
                "SCRAM-SHA-256" => Sasl::scram_sha_256(username, password),
                "SCRAM-SHA-512" => Sasl::scram_sha_512(username, password),
                other => {
                    return Err(invalid(
                        "kafka-sasl-mechanism",
                        format!("{other:?}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                    ));
                }
            })
        }
        _ => {
            return Err(invalid(
                "kafka-sasl-username",
                "SASL needs both --kafka-sasl-username and REALTIME_KAFKA_SASL_PASSWORD".into(),
            ));
        }
    };
    config.validate()?;
    Ok(config)
}

/// The RabbitMQ bus's configuration: the URL, and TLS files for `amqps://`.
pub(crate) fn amqp(options: &Options, url: &str) -> Result<AmqpBusConfig> {
    let mut config = AmqpBusConfig::new(url);
    let files = &options.amqp_tls;
    if let Some(path) = &files.ca_file {
        let pem = read_pem("amqp-ca-file", path)?;
        config.tls.root_certificate_pem = Some(String::from_utf8_lossy(&pem).into_owned());
    }
    if let Some(path) = &files.client_cert_file {
        config.tls.client_certificate_pem = Some(read_pem("amqp-client-cert-file", path)?);
    }
    if let Some(path) = &files.client_key_file {
        config.tls.client_key_pem = Some(read_pem("amqp-client-key-file", path)?);
    }
    config.validate()?;
    Ok(config)
}

/// The NATS bus's configuration: the URL, one kind of credentials, TLS files.
pub(crate) fn nats(options: &Options, url: &str) -> Result<NatsBusConfig> {
    let nats = &options.nats;
    let mut config = NatsBusConfig::new(url);
    let mut given = Vec::new();
    if let (Some(user), Some(password)) = (&nats.user, &nats.password) {
        given.push(NatsCredentials::UserPassword {
            user: user.clone(),
            password: password.clone(),
        });
    } else if nats.user.is_some() || nats.password.is_some() {
        return Err(invalid(
            "nats-user",
            "a NATS user needs REALTIME_NATS_PASSWORD, and a password a user".into(),
        ));
    }
    given.extend(nats.token.clone().map(NatsCredentials::Token));
    given.extend(nats.nkey_seed.clone().map(NatsCredentials::NKey));
    given.extend(nats.creds_file.clone().map(NatsCredentials::CredsFile));
    if given.len() > 1 {
        return Err(invalid(
            "nats-user",
            "give one of user and password, token, NKey seed or creds file".into(),
        ));
    }
    config.credentials = given.pop().unwrap_or_default();
    let files = &nats.tls;
    if *files != TlsFiles::default() {
        let mut tls = NatsTls::default();
        if let Some(path) = &files.ca_file {
            tls.root_certificate_pem = Some(read_pem("nats-ca-file", path)?);
        }
        if let Some(path) = &files.client_cert_file {
            tls.client_certificate_pem = Some(read_pem("nats-client-cert-file", path)?);
        }
        if let Some(path) = &files.client_key_file {
            tls.client_key_pem = Some(read_pem("nats-client-key-file", path)?);
        }
        config.tls = Some(tls);
    }
    config.validate()?;
    Ok(config)
}

/// The CA a `rediss://` URL trusts, from `--redis-ca-file`.
pub(crate) fn redis_ca(options: &Options) -> Result<Option<Vec<u8>>> {
    options
        .redis_ca_file
        .as_deref()
        .map(|path| read_pem("redis-ca-file", path))
        .transpose()
}
