//! Connections and instances lost mid-stream.

use super::*;

/// Every pub/sub connection is killed three times mid-stream (`CLIENT KILL TYPE pubsub`):
/// every event arrives once, in order, and the bus is live again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_killed_pubsub_connections_lose_nothing() {
    let server = OwnRedis::start(Persistence::None);
    let (a, b) = (instance(&server.url()).await, instance(&server.url()).await);
    let mut subscribers = Subscribers::join(&b, 4).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let mut killed = 0u64;
    for round in 0..3 {
        publish(&a, &mut subscribers, 50).await;
        killed += redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async::<u64>(&mut admin)
            .await
            .unwrap();
        assert!(
            killed > round,
            "the fault must hit the subscriber connection"
        );
        publish(&a, &mut subscribers, 50).await;
    }
    subscribers.settle("after the kills").await;
    let counts = subscribers.verdict("pub/sub connections killed 3 times");
    assert_eq!((counts.delivered, counts.gaps), (300, 0), "{counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

/// An instance goes away while events are published on a third one: its clients reconnect
/// to another instance with their last ids and end with every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_clients_of_a_lost_instance_resume_on_another() {
    let server = OwnRedis::start(Persistence::None);
    let url = server.url();
    let (a, b, publisher) = (
        instance(&url).await,
        instance(&url).await,
        instance(&url).await,
    );
    let mut subscribers = Subscribers::join(&a, 4).await;
    let total = 300usize;
    let publishing = {
        let manager = publisher.manager.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..total {
                let event = manager
                    .publish(PublishRequest::new(CHANNEL, format!("{i}")))
                    .await
                    .unwrap();
                ids.push(event.id);
                if i % 20 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        })
    };
    // Each client reads a little, then its instance goes away.
    let mut last = Vec::new();
    for (client, tally) in &mut subscribers.clients {
        let mut seen = None;
        for _ in 0..5 {
            match tokio::time::timeout(DEADLINE, client.recv()).await {
                Ok(Some(message)) => {
                    if let realtime_core::Message::Event(event) = &message {
                        seen = Some(event.id);
                    }
                    tally.received(&message);
                }
                other => panic!("expected events before the loss: {other:?}"),
            }
        }
        last.push(seen);
    }
    a.manager.close().await.unwrap();
    for ((client, tally), seen) in subscribers.clients.iter_mut().zip(&mut last) {
        // Whatever was still queued arrives, then the stream ends.
        while let Some(message) = client.recv().await {
            if let realtime_core::Message::Event(event) = &message {
                *seen = Some(event.id);
            }
            tally.received(&message);
        }
        let token = seen.map(|p| p.to_token()).unwrap_or_default();
        let request = SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(CHANNEL, token)],
            ..Default::default()
        };
        let sub = b.manager.subscribe(request).await.unwrap();
        for replay in &sub.replay {
            if let Some(gap) = &replay.gap {
                tally.received(&realtime_core::Message::Gap(gap.clone()));
            }
            for event in &replay.events {
                tally.received(&realtime_core::Message::Event(event.clone()));
            }
        }
        *client = sub.client;
    }
    for id in publishing.await.unwrap() {
        subscribers.published(id);
    }
    subscribers.settle("after failing over").await;
    let counts = subscribers.verdict("instance lost mid-stream, clients resume on another");
    assert_eq!(
        (counts.delivered, counts.gaps),
        (total as u64, 0),
        "{counts}"
    );
}
