//! What the AMQP bus promises beyond the conformance suite: channel names with topic-pattern
//! characters route to themselves only, a name no routing key can carry is refused, a
//! broker that is not there is a clear error.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use realtime_amqp::{AmqpBus, AmqpBusConfig};
use realtime_core::frame::Origin;
use realtime_core::{Bus, BusMessage, Epoch, Error, NewEvent, Position};

fn exchange() -> String {
    format!("rt-test-{:016x}", Epoch::fresh().0)
}

fn event(channel: &str, data: impl Into<bytes::Bytes>) -> realtime_core::Event {
    NewEvent::new(channel, data).into_event(Position {
        epoch: Epoch(1),
        offset: 1,
    })
}

async fn next(subscription: &mut realtime_core::BusSubscription) -> Option<BusMessage> {
    tokio::time::timeout(Duration::from_millis(300), subscription.recv())
        .await
        .ok()
        .flatten()
}

/// `a.b`, `a.*`, `a.#` and `#` are four channels: a direct exchange matches routing keys
/// exactly, so none receives another's events (a topic exchange would send `a.b` to all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_with_pattern_characters_route_to_themselves() {
    let config = common::config(&common::url(), &exchange());
    let a = AmqpBus::connect(config.clone()).await.unwrap();
    let b = AmqpBus::connect(config).await.unwrap();
    let channels = ["a.b", "a.*", "a.#", "#"];
    let mut subscriptions = Vec::new();
    for channel in channels {
        subscriptions.push(b.subscribe(channel).await.unwrap());
    }
    for channel in channels {
        a.publish(&event(channel, channel.to_owned()), Origin::fresh())
            .await
            .unwrap();
    }
    for (channel, subscription) in channels.iter().zip(&mut subscriptions) {
        match next(subscription).await {
            Some(BusMessage::Event(event, _)) => assert_eq!(event.channel, *channel),
            other => panic!("{channel:?}: {other:?}"),
        }
        assert!(
            next(subscription).await.is_none(),
            "{channel:?}: only its own"
        );
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_longer_than_a_routing_key_is_refused() {
    let bus = AmqpBus::connect(common::config(&common::url(), &exchange()))
        .await
        .unwrap();
    let long = "x".repeat(300);
    let refused = bus
        .publish(&event(&long, "x"), Origin::fresh())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidChannel { .. }), "{refused}");
    assert!(matches!(
        bus.subscribe(&long).await,
        Err(Error::InvalidChannel { .. })
    ));
    bus.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_at_start_is_a_clear_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = AmqpBusConfig::new(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"));
    config.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = AmqpBus::connect(config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(text.contains("is the broker running"), "{text}");
    assert!(
        !text.contains("guest:guest"),
        "no password in errors: {text}"
    );
}

/// Closing deletes the instance's queue (exclusive, with its connection), and the bus is
/// told so by the broker: a passive declare of it fails afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_no_queue_behind() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;

    let bus = AmqpBus::connect(common::config(&common::url(), &exchange()))
        .await
        .unwrap();
    let queue = bus.queue().unwrap();
    bus.close().await.unwrap();
    let connection = lapin::Connection::connect(&common::url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(declared.is_err(), "queue {queue} still there");
}

/// Waits for `subscription` to say it was interrupted, within 15 s.
async fn until_interrupted(subscription: &mut realtime_core::BusSubscription, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, subscription.recv()).await {
            Ok(Some(BusMessage::Interrupted)) => return,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("{what}: no Interrupted within 15 s"),
        }
    }
}

/// Publishes until the bus takes it (it may be reconnecting), then waits for `subscription`
/// to receive it.
async fn delivered_again(
    publisher: &AmqpBus,
    subscription: &mut realtime_core::BusSubscription,
    data: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(error) = publisher
        .publish(&event("c", data.to_owned()), Origin::fresh())
        .await
    {
        assert!(error.is_retryable() && Instant::now() < deadline, "{error}");
        // A back-off between attempts, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(10), subscription.recv()).await {
            Ok(Some(BusMessage::Event(event, _))) if &event.data[..] == data.as_bytes() => return,
            Ok(Some(_)) => {}
            other => panic!("{data:?} not delivered: {other:?}"),
        }
    }
}

fn quick_probes(exchange: &str) -> AmqpBusConfig {
    let mut config = common::config(&common::url(), exchange);
    config.probe_interval = Duration::from_millis(200);
    config
}

/// An operator deletes the exchange: every binding goes with it, silently for an instance
/// that only receives. Its probes stop coming back; it rebuilds, says `Interrupted`, and
/// receives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_deleted_by_hand_is_noticed_and_rebuilt() {
    use lapin::options::ExchangeDeleteOptions;

    let exchange = exchange();
    let a = AmqpBus::connect(quick_probes(&exchange)).await.unwrap();
    let b = AmqpBus::connect(quick_probes(&exchange)).await.unwrap();
    let mut subscription = b.subscribe("c").await.unwrap();
    let connection = lapin::Connection::connect(&common::url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    until_interrupted(&mut subscription, "after the exchange was deleted").await;
    delivered_again(&a, &mut subscription, "after the exchange came back").await;
    assert!(b.reconnects() >= 1);
}

/// An operator deletes the instance's queue (`rabbitmqctl delete_queue`): the broker
/// cancels its consumer. The bus notices, declares a new queue, binds it, says
/// `Interrupted`, and receives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deleted_by_hand_is_noticed_and_rebuilt() {
    let exchange = exchange();
    let a = AmqpBus::connect(quick_probes(&exchange)).await.unwrap();
    let b = AmqpBus::connect(quick_probes(&exchange)).await.unwrap();
    let mut subscription = b.subscribe("c").await.unwrap();
    let queue = b.queue().unwrap();
    let deleted = std::process::Command::new("rabbitmqctl")
        .args(["delete_queue", &queue])
        .output()
        .expect("rabbitmqctl (the machine's RabbitMQ) deletes the queue");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    until_interrupted(&mut subscription, "after the queue was deleted").await;
    delivered_again(&a, &mut subscription, "after the queue came back").await;
    assert_ne!(b.queue(), Some(queue), "a new queue");
}
