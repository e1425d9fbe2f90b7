//! The crate's one error type.

use std::error::Error as StdError;
use std::fmt;

use crate::event::Event;

/// A boxed error from a backend's client library.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Result alias used throughout realtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in realtime-core, and what a backend reports through it.
///
/// Match on the variant for what happened, or ask [`Error::is_retryable`] whether the
/// same call may succeed later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manager already serves its configured maximum number of clients.
    #[error("too many connections (limit {limit})")]
    TooManyConnections {
        /// The configured limit.
        limit: usize,
    },
    /// A channel name is empty, too long, or has a character outside the allowed set.
    #[error("invalid channel {channel:?}: {reason}")]
    InvalidChannel {
        /// The rejected name (truncated to 64 characters).
        channel: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A request field other than the channel is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The field: `tenant`, `subject`, `type`, `data`, `channels`.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field name.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The manager, store or bus has been closed.
    #[error("closed")]
    Closed,
    /// A client id is not connected to this manager.
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    /// The event was stored (it has a position and will be replayed) but could not be handed
    /// to the bus; other instances repair it from the store when their next event arrives.
    /// Publishing again would store a second copy.
    #[error("event {} stored but not broadcast: {source}", .event.id)]
    NotBroadcast {
        /// The stored event.
        event: Box<Event>,
        /// The bus failure.
        source: BackendError,
    },
    /// A store or bus backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Error {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::TooManyConnections { .. } => true,
            Error::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// [`Error::NotBroadcast`] for `event`, keeping a backend failure's kind.
    pub fn not_broadcast(event: Event, error: Error) -> Self {
        Error::NotBroadcast {
            event: Box::new(event),
            source: error.into_bus_failure(),
        }
    }

    /// A bus failure as a [`BackendError`], keeping its kind when it is one.
    pub(crate) fn into_bus_failure(self) -> BackendError {
        match self {
            Error::Backend(source) => source,
            other => BackendError::new("bus", BackendErrorKind::Connection, other.to_string()),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    /// [`Error::InvalidConfig`] for `field`: what a backend's or adapter's configuration
    /// validation returns.
    pub fn invalid_config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}

/// What kind of backend failure happened; decides whether it is retryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The server could not be reached or the connection dropped. Retryable.
    Connection,
    /// The operation did not finish within its timeout. Retryable.
    Timeout,
    /// The server answered something unexpected, or refused the request. Not retryable.
    Protocol,
    /// Data read from the backend could not be decoded. Not retryable.
    Decode,
    /// The backend's configuration is wrong (bad URL, missing permission). Not retryable.
    Config,
}

/// A failure reported by a store or bus implementation.
pub struct BackendError {
    kind: BackendErrorKind,
    backend: &'static str,
    message: String,
    source: Option<BoxError>,
}

impl BackendError {
    /// A new error of `kind` from the backend named `backend` (e.g. `"redis"`).
    pub fn new(backend: &'static str, kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            backend,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the client library's error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Whether the operation may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            BackendErrorKind::Connection | BackendErrorKind::Timeout
        )
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("backend", &self.backend)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} error: {}",
            self.backend, self.kind, self.message
        )?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
