//! Where the manager's background tasks run: with `ManagerBuilder::runtime`, a channel's bus
//! reader outlives the runtime of the task that first subscribed (an actix-web worker, say).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use realtime_core::{
    InMemoryBus, InMemoryStore, Manager, Message, PublishRequest, SubscribeRequest,
};

/// Two instances on one store and bus: `receiver` (background tasks on `runtime`, if given)
/// and a publisher.
fn instances(runtime: Option<tokio::runtime::Handle>) -> (Manager, Manager) {
    let (store, bus) = (Arc::new(InMemoryStore::new()), Arc::new(InMemoryBus::new()));
    let mut receiver = Manager::builder().store(store.clone()).bus(bus.clone());
    if let Some(runtime) = runtime {
        receiver = receiver.runtime(runtime);
    }
    let publisher = Manager::builder().store(store).bus(bus).build().unwrap();
    (receiver.build().unwrap(), publisher)
}

/// Subscribes to `c` on a short-lived runtime (a worker), which is then shut down, then
/// again on `main`; whether an event published by the other instance reaches the second
/// subscriber.
fn reaches_after_the_first_runtime_is_gone(use_main: bool) -> bool {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (receiver, publisher) = instances(use_main.then(|| main.handle().clone()));
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = worker
        .block_on(receiver.subscribe(SubscribeRequest::channel("c")))
        .unwrap();
    drop(worker);
    let reached = main.block_on(async {
        let mut second = receiver
            .subscribe(SubscribeRequest::channel("c"))
            .await
            .unwrap();
        publisher
            .publish(PublishRequest::new("c", "across"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            match tokio::time::timeout_at(deadline, second.client.recv()).await {
                Ok(Some(Message::Event(event))) => return &*event.data == b"across",
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
    });
    drop(first);
    reached
}

#[test]
fn a_given_runtime_keeps_the_bus_reader_alive() {
    assert!(reaches_after_the_first_runtime_is_gone(true));
}

#[test]
fn without_it_the_reader_dies_with_the_worker_that_started_it() {
    // What `ManagerBuilder::runtime` is for: this documents the failure it prevents.
    assert!(!reaches_after_the_first_runtime_is_gone(false));
}
