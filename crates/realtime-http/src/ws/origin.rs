//! Which `Origin`s may open a WebSocket.

use std::fmt;
use std::sync::Arc;

/// A custom origin decision: the `Origin` header (`None` when absent) → allowed.
pub type OriginCheck = dyn Fn(Option<&str>) -> bool + Send + Sync;

/// The origin policy, checked before the upgrade; a refused origin gets 403.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Any origin, and requests without one (non-browser clients). The default, as in the Go
    /// package with an empty allow-list.
    #[default]
    AllowAll,
    /// Only these origins. An entry is an exact origin (`https://app.example.com`) or a
    /// wildcard over subdomains (`https://*.example.com` allows `https://a.example.com` and
    /// `https://a.b.example.com`, not `https://example.com`). Comparison ignores ASCII case.
    /// A request without an `Origin` header is refused.
    AllowList(Vec<String>),
    /// Decided by a function of the `Origin` header (`None` when absent).
    Custom(Arc<OriginCheck>),
}

impl OriginPolicy {
    /// An allow-list policy.
    pub fn allow_list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OriginPolicy::AllowList(origins.into_iter().map(Into::into).collect())
    }

    /// A policy decided by `decide`.
    pub fn custom(decide: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> Self {
        OriginPolicy::Custom(Arc::new(decide))
    }

    /// Whether a request with this `Origin` header may connect.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match self {
            OriginPolicy::AllowAll => true,
            OriginPolicy::Custom(decide) => decide(origin),
            OriginPolicy::AllowList(entries) => {
                origin.is_some_and(|origin| entries.iter().any(|entry| matches(entry, origin)))
            }
        }
    }
}

/// Whether `origin` matches one allow-list entry.
fn matches(entry: &str, origin: &str) -> bool {
    let (Some((entry_scheme, entry_host)), Some((scheme, host))) =
        (entry.split_once("://"), origin.split_once("://"))
    else {
        return false;
    };
    if !entry_scheme.eq_ignore_ascii_case(scheme) {
        return false;
    }
    match entry_host.strip_prefix("*.") {
        None => entry_host.eq_ignore_ascii_case(host),
        Some(suffix) => {
            // `a.example.com:8443` matches `*.example.com:8443`: the suffix includes the port.
            host.len() > suffix.len() + 1
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.is_char_boundary(host.len() - suffix.len())
        }
    }
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPolicy::AllowAll => f.write_str("AllowAll"),
            OriginPolicy::AllowList(list) => f.debug_tuple("AllowList").field(list).finish(),
            OriginPolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_with_wildcards() {
        let policy = OriginPolicy::allow_list(["https://app.example.com", "https://*.example.org"]);
        for ok in [
            "https://app.example.com",
            "HTTPS://APP.example.com",
            "https://a.example.org",
            "https://a.b.example.org",
        ] {
            assert!(policy.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "http://app.example.com",
            "https://example.org",
            "https://evilexample.org",
            "https://example.org.evil.com",
            "https://app.example.com:8443",
            "null",
        ] {
            assert!(!policy.allows(Some(bad)), "{bad}");
        }
        assert!(
            !policy.allows(None),
            "no Origin header is refused by an allow-list"
        );
    }

    #[test]
    fn all_and_custom() {
        assert!(OriginPolicy::AllowAll.allows(None));
        let policy = OriginPolicy::custom(|origin| origin.is_some_and(|o| o.ends_with(".test")));
        assert!(policy.allows(Some("http://x.test")));
        assert!(!policy.allows(Some("http://x.com")));
    }
}
