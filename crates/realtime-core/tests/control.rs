//! `disconnect_everywhere` reaches an instance whose bus lost the request (and said so):
//! read back from the shared store's history of the control channel, or, per instance
//! (nothing to read back), from the sender's repeats.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use realtime_core::{
    Bus, BusMessage, BusSubscription, Client, CloseReason, Event, History, InMemoryBus,
    InMemoryStore, Manager, ManagerConfig, Origin, Reach, Result, SubscribeRequest,
};

/// A bus connection that loses the first message naming `victim` (and tells its
/// subscription it was interrupted, as a bus does after a reconnect).
struct LosesOne {
    inner: InMemoryBus,
    lost: Arc<AtomicBool>,
}

#[async_trait]
impl Bus for LosesOne {
    async fn publish(&self, event: &Event, origin: Origin) -> Result<()> {
        self.inner.publish(event, origin).await
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        let mut inner = self.inner.subscribe(channel).await?;
        let (sender, subscription) = BusSubscription::channel(64, || {});
        let lost = self.lost.clone();
        tokio::spawn(async move {
            while let Some(message) = inner.recv().await {
                let names_victim = matches!(&message, BusMessage::Event(event, _)
                    if event.data.windows(6).any(|w| w == b"victim"));
                if names_victim && !lost.swap(true, Ordering::AcqRel) {
                    sender.interrupted();
                } else {
                    sender.send(message);
                }
            }
        });
        Ok(subscription)
    }

    fn reach(&self) -> Reach {
        self.inner.reach()
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

fn instance(bus: Arc<dyn Bus>, store: &Arc<InMemoryStore>, history: History) -> Manager {
    let mut config = ManagerConfig::default();
    config.history = history;
    let builder = Manager::builder().config(config).bus(bus);
    match history {
        History::Shared => builder.store(store.clone()),
        _ => builder.store(Arc::new(InMemoryStore::new())),
    }
    .build()
    .unwrap()
}

async fn client(manager: &Manager, id: &str) -> Client {
    let mut request = SubscribeRequest::channel("c");
    request.client_id = Some(id.into());
    manager.subscribe(request).await.unwrap().client
}

async fn closed(client: &mut Client) -> Option<CloseReason> {
    // Drains until the stream ends, within a deadline.
    tokio::time::timeout(Duration::from_secs(60), async {
        while client.recv().await.is_some() {}
    })
    .await
    .expect("the client is closed within the deadline");
    client.close_reason()
}

/// `a` asks to disconnect `victim`, whose only client is on `b`, and `b`'s bus loses it.
async fn lost_on_the_way(history: History) {
    let broker = InMemoryBus::new();
    let store = Arc::new(InMemoryStore::new());
    let a = instance(Arc::new(broker.connect()), &store, history);
    let lossy = LosesOne {
        inner: broker.connect(),
        lost: Arc::default(),
    };
    let lost = lossy.lost.clone();
    let b = instance(Arc::new(lossy), &store, history);
    let _on_a = client(&a, "someone").await;
    let mut victim = client(&b, "victim").await;
    let bystander = client(&b, "bystander").await;
    a.disconnect_everywhere("victim").await.unwrap();
    assert_eq!(closed(&mut victim).await, Some(CloseReason::Disconnected));
    assert!(
        lost.load(Ordering::Acquire),
        "the request was lost on b's bus"
    );
    assert_eq!(bystander.close_reason(), None, "only the named client");
}

#[tokio::test(start_paused = true)]
async fn a_lost_request_is_read_back_from_the_shared_store() {
    lost_on_the_way(History::Shared).await;
}

#[tokio::test(start_paused = true)]
async fn per_instance_a_lost_request_arrives_repeated() {
    lost_on_the_way(History::PerInstance).await;
}
