//! Where a connection hands what it reads: the reader's queue and the resume points.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::error::Error;
use crate::update::{ReceivedEvent, ResumePoints, Update};

pub(crate) fn lock(resume: &Mutex<ResumePoints>) -> std::sync::MutexGuard<'_, ResumePoints> {
    // The points stay consistent whatever panicked while holding them.
    resume.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a connection hands what it reads: the reader's queue and the resume points.
#[derive(Debug, Clone)]
pub(crate) struct Outlet {
    pub(crate) sender: mpsc::Sender<Result<Update, Error>>,
    pub(crate) resume: Arc<Mutex<ResumePoints>>,
    /// The channels subscribed: anything else a server sends is dropped (it would grow the
    /// resume points).
    pub(crate) channels: Arc<[String]>,
}

/// The reader is gone: the connection stops.
#[derive(Debug)]
pub(crate) struct ReaderGone;

impl Outlet {
    pub(crate) fn resume_point(&self, channel: &str) -> Option<String> {
        lock(&self.resume).get(channel).map(str::to_owned)
    }

    /// Hands on an event unless it repeats one already handed on.
    pub(crate) async fn event(&self, event: ReceivedEvent) -> Result<(), ReaderGone> {
        if !self.channels.contains(&event.channel) {
            tracing::debug!(channel = %event.channel, "event of a channel not subscribed dropped");
            return Ok(());
        }
        if !lock(&self.resume).advance(&event.channel, &event.id) {
            tracing::debug!(channel = %event.channel, id = %event.id, "repeated event dropped");
            return Ok(());
        }
        self.send(Update::Event(event)).await
    }

    pub(crate) async fn gap(
        &self,
        channel: String,
        reason: String,
        head: String,
    ) -> Result<(), ReaderGone> {
        if !self.channels.contains(&channel) {
            return Ok(());
        }
        lock(&self.resume).set(&channel, &head);
        self.send(Update::Gap {
            channel,
            reason,
            head,
        })
        .await
    }

    pub(crate) async fn send(&self, update: Update) -> Result<(), ReaderGone> {
        self.sender.send(Ok(update)).await.map_err(|_| ReaderGone)
    }
}

/// How one connection ended: whether it got as far as connected, and why it ended.
pub(crate) struct Ended {
    pub(crate) connected: bool,
    pub(crate) error: Result<Error, ReaderGone>,
}
