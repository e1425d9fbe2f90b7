//! Broker URLs as backends print them: without secrets.

/// `url` with any password in its user part replaced by `***` (a lone user part, which some
/// brokers take as a token, is replaced whole), and the values of `password`, `pass`,
/// `token` and `secret` query parameters too; a comma-separated list of URLs (a cluster's
/// seed list) is redacted URL by URL — unless a comma sits inside a user part (a password
/// may hold one), where the whole text is one URL. For configs' `Debug`, logs and error
/// messages.
///
/// ```
/// use realtime_core::driver::redact_url;
/// assert_eq!(redact_url("amqp://app:s3cret@mq:5672/%2f"), "amqp://app:***@mq:5672/%2f");
/// assert_eq!(redact_url("nats://t0ken@a:4222,nats://b:4222"), "nats://***@a:4222,nats://b:4222");
/// ```
pub fn redact_url(url: &str) -> String {
    let parts: Vec<&str> = url.split(',').collect();
    // A later part with a user part but no scheme is the rest of a password, not a URL.
    let one_url = parts
        .iter()
        .skip(1)
        .any(|part| part.contains('@') && !part.contains("://"));
    if one_url {
        return redact_one(url);
    }
    parts
        .into_iter()
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

/// `url` with the values of secret-looking query parameters replaced by `***`.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if ["password", "pass", "token", "secret"]
                    .iter()
                    .any(|secret| key.eq_ignore_ascii_case(secret)) =>
            {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

fn redact_one(url: &str) -> String {
    redact_query(&redact_user(url))
}

fn redact_user(url: &str) -> String {
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
        // A comma in a password is not a list.
        assert_eq!(redact_url("redis://:pa,ss@h"), "redis://:***@h");
        assert_eq!(redact_url("a:4222,b:4222"), "a:4222,b:4222");
        // Secrets in the query.
        assert_eq!(
            redact_url("unix:///run/redis.sock?db=1&pass=s3cret"),
            "unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("rediss://h:6379/?Password=x&protocol=resp3"),
            "rediss://h:6379/?Password=***&protocol=resp3"
        );
    }
}
