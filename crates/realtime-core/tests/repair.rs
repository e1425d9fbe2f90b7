//! Live repair on a single-threaded runtime: a repair that never yields would hang it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{FlakyBus, publisher_and_receiver};
use realtime_core::{ManagerConfig, Message, PublishRequest, SubscribeRequest};

/// The bus loses event 2 and carries event 3; the repair reads both from the store. The
/// held copy of 3 is then done with: the repair must end, and later events flow. (It used
/// to loop on the store forever, which on one thread hangs everything.)
#[test]
fn a_repaired_hole_ends_the_repair() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (publisher, receiver) =
                publisher_and_receiver(|bus| FlakyBus::losing(bus, 1..2), ManagerConfig::default());
            let mut client = receiver
                .subscribe(SubscribeRequest::channel("c"))
                .await
                .unwrap()
                .client;
            let mut ids = Vec::new();
            for i in 0..5 {
                ids.push(
                    publisher
                        .publish(PublishRequest::new("c", format!("{i}")))
                        .await
                        .unwrap()
                        .id,
                );
                // Let the receiver's bus reader and any repair run between publishes.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            let mut got = Vec::new();
            while got.len() < ids.len() {
                match client.recv().await {
                    Some(Message::Event(event)) => got.push(event.id),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, ids);
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime was hung by a repair that never ends");
}
