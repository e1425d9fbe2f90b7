//! The smallest proof that a connection mode works end to end: two instances, each a
//! [`Manager`] on its own bus connection, and an event published on one reaching a
//! subscriber on the other.

use std::sync::Arc;
use std::time::Duration;

use realtime_core::{
    Bus, History, Manager, Message, Position, PublishRequest, Store, SubscribeRequest,
};

/// How long the event may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// An instance on bus `a` publishes to channel `orders`; one on bus `b` subscribed to it
/// receives the event. With `store`, both instances share it; without, each keeps its own
/// history. Returns the event's id on `a`.
///
/// # Panics
/// If a step fails or the event does not arrive within 20 s, saying which.
pub async fn exchange(a: Arc<dyn Bus>, b: Arc<dyn Bus>, store: Option<Arc<dyn Store>>) -> Position {
    let instance = |bus: Arc<dyn Bus>| {
        let builder = Manager::builder().bus(bus);
        let built = match &store {
            Some(store) => builder.store(store.clone()).build(),
            None => builder.history(History::PerInstance).build(),
        };
        built.unwrap_or_else(|e| panic!("a manager: {e}"))
    };
    let (a, b) = (instance(a), instance(b));
    let mut on_b = b
        .subscribe(SubscribeRequest::channel("orders"))
        .await
        .unwrap_or_else(|e| panic!("subscribing on b: {e}"))
        .client;
    let published = a
        .publish(PublishRequest::new("orders", "exchanged"))
        .await
        .unwrap_or_else(|e| panic!("publishing on a: {e}"));
    match tokio::time::timeout(DEADLINE, on_b.recv()).await {
        Ok(Some(Message::Event(event))) => {
            assert_eq!(&event.data[..], b"exchanged", "b received another event");
            // Per instance, b records the event at a position of its own history.
            if store.is_some() {
                assert_eq!(event.id, published.id, "b received another event");
            }
        }
        other => panic!("expected the event on b, got {other:?}"),
    }
    published.id
}
