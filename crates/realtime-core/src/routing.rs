//! Channel names, tenants and subjects: validation and who receives what.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::sse::RESERVED_TYPE_PREFIX;

/// Longest tenant or subject accepted.
pub const MAX_ROUTING_KEY_LEN: usize = 256;
/// Longest event type accepted.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Checks a channel name: 1 to `max_len` bytes of ASCII letters, digits and `- _ . : / @`.
///
/// The set leaves out characters with a meaning to brokers and URLs (`*`, `>`, `#`, `{`,
/// `}`, spaces, `?`, `&`), so a name can be used as a topic or key by every backend.
pub fn validate_channel(channel: &str, max_len: usize) -> Result<()> {
    let invalid = |reason| Error::InvalidChannel {
        channel: channel.chars().take(64).collect(),
        reason,
    };
    if channel.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if channel.len() > max_len {
        return Err(invalid("too long"));
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'@');
    if !channel.bytes().all(allowed) {
        return Err(invalid(
            "only ASCII letters, digits and - _ . : / @ are allowed",
        ));
    }
    Ok(())
}

/// Separates a tenant scope from the channel name in a tenant-scoped channel. It is not
/// allowed in channel names, so a scoped name never equals a plain one.
const SCOPE_SEPARATOR: char = '~';

/// The channel a tenant's `channel` is stored and carried under when channels are scoped
/// by tenant ([`ManagerConfig::tenant_scoped_channels`](crate::ManagerConfig)): each tenant
/// has its own sequence of positions and its own retention. The tenant is written with
/// characters a channel name allows (others as `%XX`) between two `~`.
pub fn scoped_channel(tenant: &str, channel: &str) -> String {
    let mut scoped = String::with_capacity(tenant.len() + channel.len() + 2);
    scoped.push(SCOPE_SEPARATOR);
    for byte in tenant.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            scoped.push(char::from(byte));
        } else {
            scoped.push_str(&format!("%{byte:02X}"));
        }
    }
    scoped.push(SCOPE_SEPARATOR);
    scoped.push_str(channel);
    scoped
}

/// Separates a tenant from the caller's key in an idempotency key the manager stores: a
/// control character, which no validated tenant or key contains, so the pair is recovered
/// unambiguously and no tenant can name another's key.
const KEY_SCOPE_SEPARATOR: char = '\u{2}';

/// The idempotency key a publish by `tenant` with `key` is stored under: the key itself
/// without a tenant, `<tenant>\u{2}<key>` with one. Keys are per tenant in every mode —
/// with [`ManagerConfig::tenant_scoped_channels`](crate::ManagerConfig) off, tenants share
/// a channel, and a shared key would hand one tenant's position to another and drop its
/// event.
pub(crate) fn scoped_idempotency_key(tenant: Option<&str>, key: String) -> String {
    match tenant {
        None => key,
        Some(tenant) => {
            let mut scoped = String::with_capacity(tenant.len() + key.len() + 1);
            scoped.push_str(tenant);
            scoped.push(KEY_SCOPE_SEPARATOR);
            scoped.push_str(&key);
            scoped
        }
    }
}

/// The name a client knows a channel by: `channel` itself, or, for a tenant-scoped channel
/// ([`scoped_channel`]), the part after its scope.
pub fn channel_name(channel: &str) -> &str {
    match channel.rsplit_once(SCOPE_SEPARATOR) {
        Some((_, name)) => name,
        None => channel,
    }
}

/// Checks a tenant or subject: 1 to 256 bytes, no control characters.
pub fn validate_routing_key(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty (omit it instead)"));
    }
    if value.len() > MAX_ROUTING_KEY_LEN {
        return Err(Error::invalid(
            field,
            format!("longer than {MAX_ROUTING_KEY_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// Checks an event type: 1 to 128 bytes, no control characters (so no line break can reach
/// the SSE `event:` field), and not the reserved `realtime-` prefix.
pub fn validate_event_type(value: &str) -> Result<()> {
    validate_routing_key("type", value)?;
    if value.len() > MAX_EVENT_TYPE_LEN {
        return Err(Error::invalid(
            "type",
            format!("longer than {MAX_EVENT_TYPE_LEN} bytes"),
        ));
    }
    if value.starts_with(RESERVED_TYPE_PREFIX) {
        return Err(Error::invalid(
            "type",
            format!("the prefix {RESERVED_TYPE_PREFIX:?} is reserved"),
        ));
    }
    Ok(())
}

/// Who a client is, for routing: its tenant and subject.
///
/// Strict by default:
/// - an event with a tenant reaches only clients of that tenant; an event without a tenant
///   reaches every client;
/// - a client without a tenant receives only events without a tenant;
/// - subjects work the same way within what the tenant rule lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The client's tenant, from the authorization hook.
    pub tenant: Option<Arc<str>>,
    /// The client's subject, from the authorization hook.
    pub subject: Option<Arc<str>>,
}

impl Route {
    /// Whether a client with this route may receive `event`.
    pub fn accepts(&self, event: &Event) -> bool {
        fn matches(event_key: Option<&String>, client_key: Option<&Arc<str>>) -> bool {
            match (event_key, client_key) {
                (None, _) => true,
                (Some(e), Some(c)) => e.as_str() == &**c,
                (Some(_), None) => false,
            }
        }
        matches(event.tenant.as_ref(), self.tenant.as_ref())
            && matches(event.subject.as_ref(), self.subject.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::position::{Epoch, Position};

    #[test]
    fn channel_names() {
        for ok in ["a", "orders", "user:42/feed", "a.b-c_d@e"] {
            assert!(validate_channel(ok, 128).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a{b}", "a*", "a>", "é", "a\nb", &"x".repeat(129)] {
            assert!(
                matches!(
                    validate_channel(bad, 128),
                    Err(Error::InvalidChannel { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn event_types() {
        assert!(validate_event_type("created").is_ok());
        assert!(validate_event_type("a\nb").is_err());
        assert!(validate_event_type("realtime-gap").is_err());
        assert!(validate_event_type("").is_err());
    }

    #[test]
    fn tenant_isolation_is_strict() {
        let event = |tenant: Option<&str>, subject: Option<&str>| {
            let mut e = NewEvent::new("c", "x");
            e.tenant = tenant.map(Into::into);
            e.subject = subject.map(Into::into);
            e.into_event(Position::new(Epoch(1), 1))
        };
        let route = |tenant: Option<&str>, subject: Option<&str>| Route {
            tenant: tenant.map(Into::into),
            subject: subject.map(Into::into),
        };
        let anonymous = route(None, None);
        let alice = route(Some("t1"), Some("alice"));
        assert!(anonymous.accepts(&event(None, None)));
        assert!(!anonymous.accepts(&event(Some("t1"), None)));
        assert!(alice.accepts(&event(Some("t1"), None)));
        assert!(alice.accepts(&event(None, None)));
        assert!(alice.accepts(&event(Some("t1"), Some("alice"))));
        assert!(!alice.accepts(&event(Some("t1"), Some("bob"))));
        assert!(!alice.accepts(&event(Some("t2"), None)));
        assert!(!anonymous.accepts(&event(None, Some("alice"))));
    }
}
