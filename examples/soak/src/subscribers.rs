//! The subscribers: SSE (one channel each) and WebSocket (every channel), each on one demo
//! instance at a time. A cut replaces a subscriber's client with a new one on another
//! instance, resuming from the ids it had taken — the same logical subscriber, one log.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use realtime_client::{RealtimeClient, Update};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::accounting::Seen;

/// The soak's channels.
pub(crate) const CHANNELS: [&str; 2] = ["soak-a", "soak-b"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Sse,
    WebSocket,
}

/// What a subscriber has taken from its streams: its log and, per channel, the id to resume
/// after — updated together, so a client dropped between two updates resumes exactly.
#[derive(Default)]
pub(crate) struct Taken {
    pub(crate) log: Vec<Seen>,
    resume: HashMap<String, String>,
    /// Errors that ended a stream (a refusal the client does not retry).
    pub(crate) fatal: Vec<String>,
}

pub(crate) struct Subscriber {
    pub(crate) name: String,
    pub(crate) transport: Transport,
    /// Indexes into [`CHANNELS`].
    pub(crate) channels: Vec<usize>,
    pub(crate) taken: Arc<Mutex<Taken>>,
    pub(crate) connects: Arc<AtomicU64>,
    pub(crate) cuts: u64,
    task: Option<JoinHandle<()>>,
}

impl Subscriber {
    pub(crate) fn new(name: String, transport: Transport, channels: Vec<usize>) -> Self {
        Subscriber {
            name,
            transport,
            channels,
            taken: Arc::default(),
            connects: Arc::default(),
            cuts: 0,
            task: None,
        }
    }

    /// Connects to the demo on `port`, resuming every channel after what was taken.
    pub(crate) async fn connect(&mut self, port: u16) -> Result<(), String> {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let mut builder = match self.transport {
            Transport::Sse => RealtimeClient::sse(format!("http://127.0.0.1:{port}/events")),
            Transport::WebSocket => RealtimeClient::websocket(format!("ws://127.0.0.1:{port}/ws")),
        };
        {
            let taken = self.taken.lock().await;
            for &channel in &self.channels {
                let name = CHANNELS[channel];
                builder = builder.channel(name);
                if let Some(id) = taken.resume.get(name) {
                    builder = builder.resume(name, id.clone());
                }
            }
        }
        let client = builder
            .reconnect_delays(Duration::from_millis(50), Duration::from_millis(500))
            .connect_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(30))
            .buffer(4_096)
            .build()
            .map_err(|e| format!("{}: {e}", self.name))?;
        self.task = Some(tokio::spawn(read(
            client,
            self.taken.clone(),
            self.connects.clone(),
        )));
        Ok(())
    }

    /// Drops the current client mid-stream and connects a new one to `port`.
    pub(crate) async fn cut(&mut self, port: u16) -> Result<(), String> {
        self.cuts += 1;
        self.connect(port).await
    }

    /// Whether the subscriber has taken event `seq` of every one of its channels.
    pub(crate) async fn has_reached(&self, last: &[u64]) -> bool {
        let taken = self.taken.lock().await;
        self.channels.iter().all(|&channel| {
            taken.log.iter().rev().any(|seen| {
                matches!(seen, Seen::Event { channel: c, seq } if *c == channel && *seq >= last[channel])
            })
        })
    }

    pub(crate) fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reads one client's stream into `taken` until it ends.
async fn read(mut client: RealtimeClient, taken: Arc<Mutex<Taken>>, connects: Arc<AtomicU64>) {
    while let Some(update) = client.next().await {
        let mut taken = taken.lock().await;
        match update {
            Ok(Update::Event(event)) => {
                let channel = CHANNELS.iter().position(|c| *c == event.channel);
                let seq = event.text().and_then(|t| t.parse::<u64>().ok());
                let (Some(channel), Some(seq)) = (channel, seq) else {
                    taken
                        .fatal
                        .push(format!("an event not the soak's: {event:?}"));
                    continue;
                };
                taken.log.push(Seen::Event { channel, seq });
                taken.resume.insert(event.channel, event.id);
            }
            Ok(Update::Gap { channel, head, .. }) => {
                if let Some(index) = CHANNELS.iter().position(|c| *c == channel) {
                    taken.log.push(Seen::Gap {
                        channel: index,
                        head: head.clone(),
                    });
                }
                taken.resume.insert(channel, head);
            }
            Ok(Update::Connected { .. }) => {
                connects.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => taken.fatal.push(e.to_string()),
        }
    }
}
