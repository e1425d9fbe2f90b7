//! Broker URLs as backends print them: without secrets.

/// `url` with any password in its user part replaced by `***` (a lone user part, which some
/// brokers take as a token, is replaced whole); a comma-separated list of URLs (a cluster's
/// seed list) is redacted URL by URL. For configs' `Debug`, logs and error messages.
///
/// ```
/// use realtime_core::driver::redact_url;
/// assert_eq!(redact_url("amqp://app:s3cret@mq:5672/%2f"), "amqp://app:***@mq:5672/%2f");
/// assert_eq!(redact_url("nats://t0ken@a:4222,nats://b:4222"), "nats://***@a:4222,nats://b:4222");
/// ```
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        };
    };
    // The user part ends at the last `@` (a password may hold `/` or `@` unencoded); the
    // authority without it ends at the next `/`.
    let Some((userinfo, after)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let (host, path) = after
        .split_once('/')
        .map_or((after, None), |(h, p)| (h, Some(p)));
    let redacted = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{redacted}@{host}/{path}"),
        None => format!("{scheme}://{redacted}@{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_go_hosts_and_paths_stay() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://user:p@ss:w0rd@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact_url("redis://:pw@host"), "redis://:***@host");
        assert_eq!(
            redact_url("nats://a:1@h1:4222,nats://tok@h2:4222"),
            "nats://a:***@h1:4222,nats://***@h2:4222"
        );
        assert_eq!(redact_url("tok@h:1"), "***@h:1");
        assert_eq!(
            redact_url("amqp://app:pa/ss@mq:5672/%2f"),
            "amqp://app:***@mq:5672/%2f"
        );
    }
}
