//! Publishes the server refused (a subject the bus's user may not publish to). NATS reports
//! a refusal after the fact, as an error on the connection, before the publish's own round
//! trip comes back; the publish looks for its subject among the refusals reported meanwhile
//! and fails instead of claiming the event was sent. The client hands the error and the
//! round trip's echo over on different tasks, so a refusal may be recorded only just after
//! its publish returned: it is logged and counted, and for `LATELY` every publish to the
//! subject fails at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use realtime_core::{BackendErrorKind, Error};

use crate::error::failed;

/// How long a refused subject is refused again without asking the server.
const LATELY: Duration = Duration::from_secs(10);

/// Refusals remembered; a publish that finds more since it started than are kept cannot
/// tell whether its own was among them (it fails, retryable: receivers drop a copy by its
/// position).
const KEPT: usize = 64;

/// What became of a publish, as far as the server's refusals tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Sent,
    Refused,
    /// More refusals came meanwhile than are kept.
    Unknown,
}

/// Publish refusals in the order the server reported them.
#[derive(Default)]
pub(crate) struct Refusals {
    /// Refusals recorded so far (written under the lock): a publish with none since it
    /// began, the common case, takes no lock.
    count: AtomicU64,
    /// The newest, with their numbers and when they were recorded.
    recent: Mutex<VecDeque<(u64, Instant, String)>>,
}

impl Refusals {
    /// Records `text` (a server error) if it refuses a publish; returns whether it did.
    pub(crate) fn record(&self, text: &str) -> bool {
        let Some(subject) = refused_publish(text) else {
            return false;
        };
        let mut recent = self.recent.lock();
        let number = self.count.load(Ordering::Relaxed) + 1;
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back((number, Instant::now(), subject.to_owned()));
        // After the entry: whoever sees the new count finds it under the lock.
        self.count.store(number, Ordering::Release);
        true
    }

    /// How many refusals were recorded so far: a publish notes it before sending.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Whether a publish to `subject` was refused after `count` was noted.
    pub(crate) fn since(&self, count: u64, subject: &str) -> Verdict {
        if self.count() == count {
            return Verdict::Sent;
        }
        let recent = self.recent.lock();
        if recent
            .iter()
            .any(|(n, _, refused)| *n > count && refused == subject)
        {
            Verdict::Refused
        } else if recent.front().is_some_and(|(n, _, _)| *n > count + 1) {
            Verdict::Unknown
        } else {
            Verdict::Sent
        }
    }

    /// Whether a publish to `subject` was refused within [`LATELY`].
    pub(crate) fn lately(&self, subject: &str) -> bool {
        self.count() > 0
            && self
                .recent
                .lock()
                .iter()
                .any(|(_, at, refused)| refused == subject && at.elapsed() < LATELY)
    }
}

/// The error of a publish to `subject` (on `channel`) the verdict says was not sent: a
/// refusal is not retryable, an unknown outcome is.
pub(crate) fn error(verdict: Verdict, channel: &str, subject: &str) -> Error {
    let (kind, detail) = match verdict {
        Verdict::Unknown => (
            BackendErrorKind::Connection,
            "the server refused so many publishes meanwhile that this one cannot be told sent; \
             try again"
                .to_owned(),
        ),
        _ => (
            BackendErrorKind::Config,
            format!("the server refused this bus permission to publish to {subject}"),
        ),
    };
    failed("publish", Some(channel), kind, detail)
}

/// The subject of `Permissions Violation for Publish to "<subject>"`.
fn refused_publish(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("Permissions Violation for Publish to \"")?;
    rest.split_once('"').map(|(subject, _)| subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_finds_its_own_refusal_only() {
        let refusals = Refusals::default();
        let before = refusals.count();
        assert!(!refusals.record("Permissions Violation for Subscription to \"a\""));
        assert!(refusals.record("'Permissions Violation for Publish to \"rt.a\"'"));
        assert_eq!(refusals.since(before, "rt.a"), Verdict::Refused);
        assert_eq!(refusals.since(before, "rt.b"), Verdict::Sent);
        assert_eq!(refusals.since(refusals.count(), "rt.a"), Verdict::Sent);
        assert!(refusals.lately("rt.a"));
        assert!(!refusals.lately("rt.b"));
    }

    #[test]
    fn more_refusals_than_kept_leave_other_subjects_unknown() {
        let refusals = Refusals::default();
        let before = refusals.count();
        for n in 0..=KEPT {
            refusals.record(&format!("Permissions Violation for Publish to \"s{n}\""));
        }
        assert_eq!(refusals.since(before, "s0"), Verdict::Unknown, "forgotten");
        assert_eq!(refusals.since(before, "s5"), Verdict::Refused);
        assert_eq!(refusals.since(before, "never-published"), Verdict::Unknown);
        assert_eq!(refusals.since(refusals.count(), "s3"), Verdict::Sent);
    }
}
