//! Where the demo's settings come from: flags, the environment, and files.
//!
//! Every setting `NAME` is the flag `--NAME VALUE` and the environment variable
//! `REALTIME_NAME` (upper case, `-` as `_`); a secret also has `REALTIME_NAME_FILE`, whose
//! file holds the value (how container platforms mount secrets; one trailing newline is
//! dropped). A flag wins over the environment. A secret given as a flag is visible to every
//! user of the host (`ps`): use the environment or a file.

use std::collections::BTreeMap;

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Shown as given.
    Plain,
    /// Never shown (a password, a token, a URL with a password: shown redacted); has a
    /// `_FILE` variant.
    Secret,
}

/// Every setting, by name.
pub(crate) const SETTINGS: &[(&str, Kind)] = &[
    ("addr", Kind::Plain),
    ("retry-ms", Kind::Plain),
    ("max-connections", Kind::Plain),
    ("client-buffer", Kind::Plain),
    ("history", Kind::Plain),
    ("framework", Kind::Plain),
    ("redis-url", Kind::Secret),
    ("redis-ca-file", Kind::Plain),
    ("kafka-brokers", Kind::Plain),
    ("kafka-tls", Kind::Plain),
    ("kafka-ca-file", Kind::Plain),
    ("kafka-client-cert-file", Kind::Plain),
    ("kafka-client-key-file", Kind::Plain),
    ("kafka-sasl-mechanism", Kind::Plain),
    ("kafka-sasl-username", Kind::Plain),
    ("kafka-sasl-password", Kind::Secret),
    ("kafka-replication", Kind::Plain),
    ("sqs-endpoint", Kind::Plain),
    ("amqp-url", Kind::Secret),
    ("amqp-ca-file", Kind::Plain),
    ("amqp-client-cert-file", Kind::Plain),
    ("amqp-client-key-file", Kind::Plain),
    ("nats-url", Kind::Secret),
    ("nats-user", Kind::Plain),
    ("nats-password", Kind::Secret),
    ("nats-token", Kind::Secret),
    ("nats-nkey-seed", Kind::Secret),
    ("nats-creds-file", Kind::Plain),
    ("nats-ca-file", Kind::Plain),
    ("nats-client-cert-file", Kind::Plain),
    ("nats-client-key-file", Kind::Plain),
];

/// The environment variable of setting `name`.
pub(crate) fn variable(name: &str) -> String {
    format!("REALTIME_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The settings given, by name: the environment's (through `env`), then the flags in `args`
/// over them.
pub(crate) fn collect(
    env: &dyn Fn(&str) -> Option<String>,
    args: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<&'static str, String>, String> {
    let args: Vec<String> = args.into_iter().collect();
    // Help first: a broken secret file must not hide the usage.
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Err("help".into());
    }
    let mut given = BTreeMap::new();
    for &(name, kind) in SETTINGS {
        let variable = variable(name);
        let direct = env(&variable);
        let from_file = match kind {
            Kind::Secret => env(&format!("{variable}_FILE")),
            Kind::Plain => None,
        };
        let value = match (direct, from_file) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{variable} and {variable}_FILE are both set: give one"
                ));
            }
            (Some(value), None) => value,
            (None, Some(path)) => read_secret(&variable, &path)?,
            (None, None) => continue,
        };
        given.insert(name, value);
    }
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .and_then(|name| SETTINGS.iter().find(|(known, _)| *known == name))
            .map(|(name, _)| *name)
            // Only what looks like a flag's name is echoed: a stray value (or
            // `--password=…`) may be a secret.
            .ok_or_else(|| match flag.strip_prefix("--") {
                Some(name) => format!(
                    "unknown flag --{}",
                    name.split('=').next().unwrap_or_default()
                ),
                None => "unexpected argument (a value without its --flag?)".to_owned(),
            })?;
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        given.insert(name, value);
    }
    Ok(given)
}

/// The longest secret file read.
const MAX_SECRET: u64 = 64 * 1024;

/// The secret in `path`, less trailing line ends; an error names the file, never its
/// contents. A file over [`MAX_SECRET`] bytes is refused (it is not a secret).
fn read_secret(variable: &str, path: &str) -> Result<String, String> {
    use std::io::Read as _;
    let cannot =
        |e: &dyn std::fmt::Display| format!("{variable}_FILE={path:?} cannot be read: {e}");
    let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
    let mut text = String::new();
    file.take(MAX_SECRET + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot(&e))?;
    if text.len() as u64 > MAX_SECRET {
        return Err(format!(
            "{variable}_FILE={path:?} is over {MAX_SECRET} bytes"
        ));
    }
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// The usage text: every flag and its variable.
pub(crate) fn usage() -> String {
    let mut text = String::from(
        "usage: realtime-demo [--SETTING VALUE]…\n\nEvery setting is also read from \
         REALTIME_<SETTING> (upper case, _ for -); a flag wins. Secrets also from \
         REALTIME_<SETTING>_FILE (a file holding the value).\n\n",
    );
    for &(name, kind) in SETTINGS {
        let secret = if kind == Kind::Secret {
            format!(" (or {}_FILE)", variable(name))
        } else {
            String::new()
        };
        text.push_str(&format!("  --{name:<24} {}{secret}\n", variable(name)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn environment_then_flags_and_secrets_from_files() {
        let dir = std::env::temp_dir().join(format!("rt-demo-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let env = env_of(&[
            ("REALTIME_ADDR", "127.0.0.1:9000".into()),
            ("REALTIME_NATS_URL", "nats://n:4222".into()),
            (
                "REALTIME_NATS_PASSWORD_FILE",
                file.to_string_lossy().into_owned(),
            ),
        ]);
        let given = collect(&env, ["--addr".to_owned(), "127.0.0.1:0".to_owned()]).unwrap();
        assert_eq!(given["addr"], "127.0.0.1:0");
        assert_eq!(given["nats-url"], "nats://n:4222");
        assert_eq!(given["nats-password"], "s3cret");

        let both = env_of(&[
            ("REALTIME_NATS_PASSWORD", "a".into()),
            ("REALTIME_NATS_PASSWORD_FILE", "/x".into()),
        ]);
        assert!(collect(&both, []).unwrap_err().contains("both set"));
        let missing = env_of(&[("REALTIME_REDIS_URL_FILE", "/nonexistent/secret".into())]);
        let error = collect(&missing, []).unwrap_err();
        assert!(error.contains("/nonexistent/secret"), "{error}");
        // A plain setting has no file variant.
        let plain = env_of(&[("REALTIME_ADDR_FILE", "/x".into())]);
        assert!(collect(&plain, []).unwrap().is_empty());
        let stray = collect(&env_of(&[]), ["--bogus=s3cret".to_owned(), "x".to_owned()]);
        assert_eq!(stray.unwrap_err(), "unknown flag --bogus");
        let stray = collect(&env_of(&[]), ["s3cret".to_owned()]).unwrap_err();
        assert!(!stray.contains("s3cret"), "{stray}");
        // Help even when a secret file is broken.
        let missing = env_of(&[("REALTIME_REDIS_URL_FILE", "/nonexistent/secret".into())]);
        assert_eq!(
            collect(&missing, ["--help".to_owned()]).unwrap_err(),
            "help"
        );
        assert!(collect(&env_of(&[]), ["--addr".to_owned()]).is_err());
        assert!(usage().contains("REALTIME_KAFKA_SASL_PASSWORD_FILE"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
