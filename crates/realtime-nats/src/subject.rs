//! Channel names as NATS subjects: one subject per channel, `<prefix><encoded channel>`.
//!
//! A NATS subject is a `.`-separated list of tokens; `*` and `>` are wildcards and
//! whitespace ends the subject. A channel name is encoded into ONE token, so that every
//! channel maps to exactly one subject and no channel's subject matches another's:
//! ASCII letters, digits and `- _ : / @ =` are kept; every other byte (`.`, `*`, `>`, `~`,
//! whitespace, anything non-ASCII) becomes `~` and two upper-case hex digits. `orders.eu`
//! is `realtime.orders~2Eeu` under the default prefix. The encoding is reversible
//! ([`decode`]).

use realtime_core::{Error, Result};

/// The longest subject sent: far below the server's control-line limit (4 KiB by
/// default, and a server that sees a longer one drops the whole connection).
pub(crate) const MAX_SUBJECT_LEN: usize = 1024;

fn kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b':' | b'/' | b'@' | b'=')
}

/// The subject of `channel` under `prefix` (a validated prefix, ending with `.`).
pub(crate) fn encode(prefix: &str, channel: &str) -> Result<String> {
    let mut subject = String::with_capacity(prefix.len() + channel.len());
    subject.push_str(prefix);
    for byte in channel.bytes() {
        if kept(byte) {
            subject.push(char::from(byte));
        } else {
            subject.push('~');
            subject.push(char::from(HEX[usize::from(byte >> 4)]));
            subject.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    if channel.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(Error::InvalidChannel {
            channel: channel.chars().take(64).collect(),
            reason: "empty, or too long as a NATS subject",
        });
    }
    Ok(subject)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The channel of a subject [`encode`] made under `prefix`; `None` for any other subject.
pub(crate) fn decode(prefix: &str, subject: &str) -> Option<String> {
    let token = subject.strip_prefix(prefix)?.as_bytes();
    let mut channel = Vec::with_capacity(token.len());
    let mut i = 0;
    while i < token.len() {
        match token[i] {
            b'~' => {
                let hex = token.get(i + 1..i + 3)?;
                let digit = |d: u8| HEX.iter().position(|&h| h == d);
                let byte = digit(hex[0])? << 4 | digit(hex[1])?;
                channel.push(u8::try_from(byte).ok()?);
                i += 3;
            }
            byte if kept(byte) => {
                channel.push(byte);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(channel).ok()
}

/// Whether `prefix` can start subjects: one or more non-empty tokens of printable ASCII
/// without wildcards, each followed by `.`.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    // Not the round-trip markers' subjects.
    !prefix.starts_with(crate::barrier::SUBJECT_PREFIX)
        && prefix.len() <= 128
        && prefix.strip_suffix('.').is_some_and(|tokens| {
            tokens.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_is_one_token_and_comes_back() {
        for channel in [
            "orders",
            "orders.eu",
            "a*b>c",
            "with space\tand tab",
            "tilde~2E",
            "t\u{1f}x",
            "ünïcode",
            "tenant\u{0}scoped",
            "-_:/@=",
        ] {
            let subject = encode("realtime.", channel).unwrap();
            let token = subject.strip_prefix("realtime.").unwrap();
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>')),
                "{channel:?} → {subject:?}"
            );
            assert_eq!(
                decode("realtime.", &subject).as_deref(),
                Some(channel),
                "{subject}"
            );
        }
        assert_eq!(
            encode("realtime.", "orders.eu").unwrap(),
            "realtime.orders~2Eeu"
        );
        // Distinct channels, distinct subjects (the tilde itself is escaped).
        assert_ne!(encode("p.", "a.b").unwrap(), encode("p.", "a~2Eb").unwrap());
    }

    #[test]
    fn foreign_subjects_and_bad_input_are_refused() {
        assert_eq!(decode("realtime.", "other.orders"), None);
        assert_eq!(decode("realtime.", "realtime.a~4"), None);
        assert_eq!(decode("realtime.", "realtime.a.b"), None);
        assert!(encode("realtime.", "").is_err());
        assert!(encode("realtime.", &"x".repeat(2000)).is_err());
    }

    #[test]
    fn prefixes_are_tokens_ending_with_a_dot() {
        assert!(valid_prefix("realtime."));
        assert!(valid_prefix("app.realtime."));
        for bad in [
            "",
            "realtime",
            ".realtime.",
            "a..b.",
            "a*.",
            "a>.",
            "a b.",
            "_REALTIME_SYNC.",
        ] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
    }
}
