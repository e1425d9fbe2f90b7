//! Per-channel positions and their opaque wire token.

use std::fmt;
use std::str::FromStr;

/// Identifies one incarnation of a channel's history.
///
/// A store picks a new epoch whenever a channel's history is lost (a new in-memory process,
/// an expired or flushed key), so a position from the old history can never be mistaken for
/// one in the new history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch of a channel that has no history at all (never written, expired, lost):
    /// its head is `Position::start(Epoch::NONE)`. Reading after that position means "from
    /// the first retained event of whatever history the channel has". No store assigns it
    /// to an event.
    pub const NONE: Epoch = Epoch(0);

    /// A new, hard-to-guess epoch for a history that is starting. Stores call this when a
    /// channel's history begins (again), so it never repeats an earlier epoch. Never
    /// [`Epoch::NONE`].
    pub fn fresh() -> Epoch {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded from the OS once per process and perturbed per instance.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        Epoch(hasher.finish().max(1))
    }
}

/// Where an event sits in its channel: the epoch of the history and the offset in it.
///
/// Offsets start at 1 and grow by exactly 1 per appended event; offset 0 means "before the
/// first event". Positions are assigned by [`Store::append`](crate::Store::append) and never
/// by a clock.
///
/// On the wire (the SSE `id:` field, `Last-Event-ID`) a position is an opaque ASCII token:
/// the epoch in lowercase hex, `-`, the offset in decimal (`9f3a0c21b4e5d6f7-42`). Clients
/// must treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The history this position belongs to.
    pub epoch: Epoch,
    /// The offset within that history; 0 is before the first event.
    pub offset: u64,
}

impl Position {
    /// A position in `epoch` at `offset`.
    pub const fn new(epoch: Epoch, offset: u64) -> Self {
        Position { epoch, offset }
    }

    /// The position before the first event of `epoch`.
    pub const fn start(epoch: Epoch) -> Self {
        Position { epoch, offset: 0 }
    }

    /// The longest token [`Position::to_token`] produces.
    pub const MAX_TOKEN_LEN: usize = 16 + 1 + 20;

    /// Renders the wire token.
    pub fn to_token(&self) -> String {
        self.to_string()
    }

    /// Parses a wire token. Anything that [`Position::to_token`] did not produce is rejected.
    pub fn parse(token: &str) -> Result<Self, InvalidPosition> {
        token.parse()
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch.0, self.offset)
    }
}

/// A resume token that is not a position this library produced.
///
/// The manager turns it into a `unknown_position` gap: the client is told, it is never
/// silently given a full replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed position token {token:?}")]
pub struct InvalidPosition {
    /// The token (truncated to 64 characters).
    pub token: String,
}

impl FromStr for Position {
    type Err = InvalidPosition;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPosition {
            token: token.chars().take(64).collect(),
        };
        if token.len() > Self::MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let (epoch, offset) = token.split_once('-').ok_or_else(invalid)?;
        // Only the canonical form: no sign, no leading zeros, no upper case.
        let canonical_hex = !epoch.is_empty()
            && epoch
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && (epoch == "0" || !epoch.starts_with('0'));
        let canonical_dec = !offset.is_empty()
            && offset.bytes().all(|b| b.is_ascii_digit())
            && (offset == "0" || !offset.starts_with('0'));
        if !canonical_hex || !canonical_dec {
            return Err(invalid());
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| invalid())?;
        let offset = offset.parse::<u64>().map_err(|_| invalid())?;
        Ok(Position {
            epoch: Epoch(epoch),
            offset,
        })
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let token = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        token.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        for pos in [
            Position::new(Epoch(0), 0),
            Position::new(Epoch(0x9f3a), 42),
            Position::new(Epoch(u64::MAX), u64::MAX),
        ] {
            let token = pos.to_token();
            assert!(token.len() <= Position::MAX_TOKEN_LEN);
            assert_eq!(Position::parse(&token), Ok(pos));
        }
        assert_eq!(Position::new(Epoch(0xab), 7).to_token(), "ab-7");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "-",
            "ab",
            "ab-",
            "-7",
            "AB-7",
            "0ab-7",
            "ab-07",
            "ab-+7",
            "ab--7",
            " ab-7",
            "ab-7 ",
            "g-1",
            "ab-1-2",
            "1-99999999999999999999999",
            "10000000000000000-1",
            "ab-7\n",
        ] {
            assert!(Position::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
