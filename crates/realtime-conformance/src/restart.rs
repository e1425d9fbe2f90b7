//! The bus-restart fault scenario as a public async function, for every network bus: two
//! instances, the bus's server killed mid-stream (right after a burst, so some events are in
//! flight) for 3 s while publishing goes on, then started again empty; the subscribers on the
//! other instance must end with every event once (a shared store) or an explicit gap (history
//! per instance), and a live event after.
//!
//! A backend's `tests/faults.rs` starts a server of its own, implements [`Restartable`] for
//! it, builds two [`Instance`]s on it, and calls [`bus_restart`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use realtime_core::frame::Origin;
use realtime_core::{
    Bus, Client, Epoch, History, Manager, Message, NewEvent, Position, PublishRequest,
    SubscribeRequest,
};
use tokio::time::Instant;

use crate::tally::{Counts, Sequence, Tally};

const DEADLINE: Duration = Duration::from_secs(30);
const CHANNEL: &str = "orders";

/// A server the scenario kills and starts again (empty, as an in-memory server comes back).
pub trait Restartable {
    /// Kills it at once.
    fn kill(&mut self);
    /// Starts it again; returns once it accepts connections.
    fn restart(&mut self);
}

/// One instance: its manager, its bus (the same one), and what the bus says of its link.
pub struct Instance {
    /// The manager, on [`Instance::bus`].
    pub manager: Manager,
    /// The bus, for a publish straight to it during the outage.
    pub bus: Arc<dyn Bus>,
    /// Whether the bus is connected (e.g. `KafkaBus::is_connected`).
    pub connected: Box<dyn Fn() -> bool + Send + Sync>,
    /// How often it came back (e.g. `KafkaBus::reconnects`).
    pub reconnects: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Instance {
    /// An instance on `bus` — in [`History::Shared`] mode with `store` (a store other
    /// instances reach), in [`History::PerInstance`] mode with `None` — with the scenario's
    /// settings: 4,096-message client queues, and background re-broadcasts that give up
    /// after 500 ms (the outage outlasts them). `connected` and `reconnects` read the bus's
    /// link state.
    pub fn new(
        bus: Arc<dyn Bus>,
        store: Option<Arc<dyn realtime_core::Store>>,
        connected: Box<dyn Fn() -> bool + Send + Sync>,
        reconnects: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Instance {
        let mut config = realtime_core::ManagerConfig::default();
        config.client_buffer = 4_096;
        config.broadcast_retry = Duration::from_millis(500);
        config.history = if store.is_some() {
            History::Shared
        } else {
            History::PerInstance
        };
        let mut builder = Manager::builder().config(config).bus(bus.clone());
        if let Some(store) = store {
            builder = builder.store(store);
        }
        Instance {
            manager: builder.build().unwrap_or_else(|e| panic!("manager: {e}")),
            bus,
            connected,
            reconnects,
        }
    }
}

impl Instance {
    /// An instance on `bus`, reading its link state with `connected` and `reconnects` (e.g.
    /// `NatsBus::is_connected`, `NatsBus::reconnects`); `store` as in [`Instance::new`].
    pub fn watching<B: Bus>(
        bus: Arc<B>,
        store: Option<Arc<dyn realtime_core::Store>>,
        connected: fn(&B) -> bool,
        reconnects: fn(&B) -> u64,
    ) -> Instance {
        let (a, b) = (bus.clone(), bus.clone());
        Instance::new(
            bus,
            store,
            Box::new(move || connected(&a)),
            Box::new(move || reconnects(&b)),
        )
    }
}

/// A server of the test's own, a child process on a free port: killed when dropped, whatever
/// the outcome (fault tests never touch the shared servers).
pub struct OwnServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    command: Box<dyn Fn(u16) -> std::process::Command + Send>,
    child: Option<std::process::Child>,
}

impl OwnServer {
    /// Starts the process `command(port)` builds, on a free port, and waits until it accepts
    /// connections.
    pub fn start(command: impl Fn(u16) -> std::process::Command + Send + 'static) -> OwnServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let mut server = OwnServer {
            port,
            command: Box::new(command),
            child: None,
        };
        server.restart();
        server
    }
}

impl Restartable for OwnServer {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole process group: a server started by a script (RabbitMQ's) runs as
            // the script's child.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let mut command = (self.command)(self.port);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + DEADLINE;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{command:?} did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `n` events, retrying a retryable failure until the deadline.
async fn publish(instance: &Instance, label: &str, n: usize) -> Vec<(Position, Bytes)> {
    let mut published = Vec::new();
    for i in 0..n {
        let data = Bytes::from(format!("{label} {i}"));
        let deadline = Instant::now() + DEADLINE;
        let stored = loop {
            match instance
                .manager
                .publish(PublishRequest::new(CHANNEL, data.clone()))
                .await
            {
                Ok(event) => break event,
                Err(error) if error.is_retryable() && Instant::now() < deadline => {
                    // A back-off between attempts, not a synchronisation.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("publish failed: {error}"),
            }
        };
        published.push((stored.id, data));
    }
    published
}

/// The server killed for `length` and started again: a publish straight to the bus fails
/// with a retryable error within 5 s, both buses see the outage and the recovery (within
/// [`DEADLINE`] of the restart: how long is printed).
async fn outage(
    server: &mut dyn Restartable,
    publisher: &Instance,
    receiver: &Instance,
    length: Duration,
) {
    server.kill();
    let started = Instant::now();
    let event = NewEvent::new(CHANNEL, "straight to the bus").into_event(Position {
        epoch: Epoch(1),
        offset: 1,
    });
    let refused = publisher
        .bus
        .publish(&event, Origin::fresh())
        .await
        .expect_err("a publish while the server is down fails");
    assert!(refused.is_retryable(), "a retryable error: {refused}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the send timeout, not a hang: {:?}",
        started.elapsed()
    );
    wait_until("the bus reports the server down", || {
        !(receiver.connected)()
    })
    .await;
    // The length of the fault, not a synchronisation.
    tokio::time::sleep(length.saturating_sub(started.elapsed())).await;
    server.restart();
    let back = Instant::now();
    wait_until("the bus reports the server back", || {
        (receiver.connected)() && (publisher.connected)()
    })
    .await;
    assert!((receiver.reconnects)() >= 1);
    eprintln!(
        "after a {length:?} outage: both buses connected {:?} after the restart",
        back.elapsed()
    );
}

/// Either kind of tally.
enum Either {
    Positions(Tally),
    Payloads(Sequence),
}

impl Either {
    fn of(history: History, all: &[(Position, Bytes)]) -> Either {
        match history {
            History::PerInstance => {
                let mut tally = Sequence::new();
                for (_, data) in all {
                    tally.published(data.clone());
                }
                Either::Payloads(tally)
            }
            _ => {
                let mut tally = Tally::new();
                for (position, _) in all {
                    tally.published(*position);
                }
                Either::Positions(tally)
            }
        }
    }

    fn received(&mut self, message: &Message) {
        match self {
            Either::Positions(tally) => tally.received(message),
            Either::Payloads(tally) => tally.received(message),
        }
    }

    fn counts(&self) -> Counts {
        match self {
            Either::Positions(tally) => tally.counts(),
            Either::Payloads(tally) => tally.counts(),
        }
    }

    fn is_settled(&self) -> bool {
        match self {
            Either::Positions(tally) => tally.is_settled(),
            Either::Payloads(tally) => tally.is_settled(),
        }
    }
}

/// The scenario: three subscribers on `b`, 20 events published on `a` and `server` killed at
/// once — some still in flight, lost with an in-memory server — 10 more published during the
/// 3 s outage, the server restarted, 20 after; then one more that must arrive as an event
/// (the bus is live). With `a` and `b` in [`History::Shared`] mode every subscriber gets all
/// 50 once; in [`History::PerInstance`] mode every one once or under a gap, and at least one
/// gap. Returns the first subscriber's counts (for its `fault-row:`).
pub async fn bus_restart(server: &mut dyn Restartable, a: &Instance, b: &Instance) -> Counts {
    bus_outage(server, a, b, Duration::from_secs(3)).await
}

/// [`bus_restart`] with an outage of `length` (a minute: longer than any reconnect attempt
/// of a client library lasts, and than the buses' back-off).
pub async fn bus_outage(
    server: &mut dyn Restartable,
    a: &Instance,
    b: &Instance,
    length: Duration,
) -> Counts {
    let history = a.manager.config().history;
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..3 {
        let subscribed = b
            .manager
            .subscribe(SubscribeRequest::channel(CHANNEL))
            .await
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        clients.push(subscribed.client);
    }
    // The subscribers read all along, as live clients do (one that stops reading for the
    // outage falls `max_lag` behind and is closed as a slow consumer), up to the live event
    // published last.
    let until = Instant::now() + length + 3 * DEADLINE;
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match tokio::time::timeout_at(until, client.recv()).await {
                        Ok(Some(Message::Event(event)))
                            if event.event().data.starts_with(b"live ") =>
                        {
                            return Ok(got);
                        }
                        Ok(Some(message)) => got.push(message),
                        Ok(None) => {
                            return Err(format!("client closed: {:?}", client.close_reason()));
                        }
                        Err(_) => {
                            return Err(format!(
                                "the live event did not arrive ({} messages)",
                                got.len()
                            ));
                        }
                    }
                }
            })
        })
        .collect();
    let mut all = publish(a, "before", 20).await;
    // Publishing goes on during the outage.
    let (during, ()) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            publish(a, "during", 10).await
        },
        outage(server, a, b, length)
    );
    all.extend(during);
    all.extend(publish(a, "after", 20).await);
    // Read up to the live event, so that everything before it counts (a gap early in the
    // queue would otherwise "cover" events still behind it).
    publish(a, "live", 1).await;
    let mut counts = Vec::new();
    for reader in readers {
        let messages = reader
            .await
            .unwrap_or_else(|e| panic!("reader: {e}"))
            .unwrap_or_else(|why| panic!("{why}"));
        let mut tally = Either::of(history, &all);
        for message in &messages {
            tally.received(message);
        }
        let c = tally.counts();
        assert!(tally.is_settled(), "{c}");
        assert!(c.is_exact_or_honest(), "{c}");
        match history {
            History::PerInstance => assert!(c.gaps >= 1, "what the server lost is signalled: {c}"),
            _ => {
                assert_eq!((c.lost, c.gaps), (0, 0), "a shared store repairs all: {c}");
                assert_eq!(c.delivered, 50, "every stored event once: {c}");
            }
        }
        counts.push(c);
    }
    counts[0]
}
