//! Queues come and go with instances: created at connect, deleted at close, reaped when their
//! instance died; an endpoint that is not there is a clear error; an event SQS cannot carry
//! is refused, not truncated.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use realtime_core::frame::Origin;
use realtime_core::{Bus, Epoch, Error, NewEvent, Position};
use realtime_sqs::{SqsBus, SqsBusConfig};

fn prefix() -> String {
    format!("rt-{:016x}-", Epoch::fresh().0)
}

use common::client;

async fn queues(prefix: &str) -> Vec<String> {
    let listed = client()
        .list_queues()
        .queue_name_prefix(prefix)
        .send()
        .await
        .unwrap();
    listed.queue_urls().to_vec()
}

async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_per_instance_deleted_at_close_and_a_dead_ones_reaped() {
    let prefix = prefix();
    // A queue left by an instance that died long ago.
    let dead = client()
        .create_queue()
        .queue_name(format!("{prefix}00000000000000de.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .tags("realtime-heartbeat", "1")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "this test needs an SQS endpoint at {} (`cargo xtask test` starts moto): {e}",
                common::endpoint()
            )
        });
    let dead = dead.queue_url().unwrap().to_owned();
    let mut config = common::config(&common::endpoint(), &prefix);
    // The reaper runs at once (then every second); the dead queue's mark is from 1970.
    config.heartbeat_interval = Duration::from_secs(1);
    config.reap_after = Duration::from_secs(60);
    let a = SqsBus::connect(config.clone()).await.unwrap();
    let b = SqsBus::connect(config).await.unwrap();
    until("the dead instance's queue is reaped", async || {
        !queues(&prefix).await.contains(&dead)
    })
    .await;
    let listed = queues(&prefix).await;
    assert!(listed.contains(&a.queue_url()) && listed.contains(&b.queue_url()));
    until("each instance sends to both", async || {
        a.peer_count() == 2 && b.peer_count() == 2
    })
    .await;
    let closed = a.queue_url();
    a.close().await.unwrap();
    assert!(
        !queues(&prefix).await.contains(&closed),
        "close deletes the queue"
    );
    b.close().await.unwrap();
}

/// A live instance whose clock runs far behind the reaper's marks its queue with old times,
/// but marks it again and again: the reaper sees the mark change and leaves the queue; once
/// the marks stop, it reaps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_mark_keeps_changing_is_not_reaped_however_old_it_reads() {
    let prefix = prefix();
    let skewed = client()
        .create_queue()
        .queue_name(format!("{prefix}00000000000000c1.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .tags("realtime-heartbeat", "1")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let mut config = common::config(&common::endpoint(), &prefix);
    config.heartbeat_interval = Duration::from_secs(1);
    config.reap_after = Duration::from_secs(60);
    let bus = SqsBus::connect(config).await.unwrap();
    // Marks from 1970 (a clock far behind), renewed twice a second for 5 s: more than the
    // three unchanged heartbeat intervals a reaper waits for.
    let marking = Instant::now();
    let mut mark = 1;
    while marking.elapsed() < Duration::from_secs(5) {
        mark += 1;
        client()
            .tag_queue()
            .queue_url(&skewed)
            .tags("realtime-heartbeat", mark.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            queues(&prefix).await.contains(&skewed),
            "a queue marked {mark} times in {:?} was reaped",
            marking.elapsed()
        );
        // The pace of the marks, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    until("the queue is reaped once its marks stop", async || {
        !queues(&prefix).await.contains(&skewed)
    })
    .await;
    bus.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sqs_cannot_carry_is_refused_not_truncated() {
    let bus = SqsBus::connect(common::config(&common::endpoint(), &prefix()))
        .await
        .unwrap();
    let event = NewEvent::new("c", "x".repeat(800 * 1024)).into_event(Position {
        epoch: Epoch(1),
        offset: 1,
    });
    let refused = bus.publish(&event, Origin::fresh()).await.unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidRequest { field: "data", .. }),
        "{refused}"
    );
    bus.close().await.unwrap();
}

/// SQS carries up to 1 MiB: the queue is made with that limit (an older endpoint's default
/// is 256 KiB; moto's is 1 MiB, so here the check is of the value asked for) and a 700 KiB
/// event arrives whole. Credentials from any provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_near_the_limit_is_carried_whole() {
    use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
    use realtime_sqs::SqsCredentials;

    let mut config = common::config(&common::endpoint(), &prefix());
    config.credentials = SqsCredentials::Provider(SharedCredentialsProvider::new(
        Credentials::new("test", "test", None, None, "a provider"),
    ));
    let a = SqsBus::connect(config.clone()).await.unwrap();
    let b = SqsBus::connect(config).await.unwrap();
    let attributes = client()
        .get_queue_attributes()
        .queue_url(b.queue_url())
        .attribute_names(QueueAttributeName::MaximumMessageSize)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
            .map(String::as_str),
        Some("1048576")
    );
    let mut subscription = b.subscribe("c").await.unwrap();
    let data = "y".repeat(700 * 1024);
    let event = NewEvent::new("c", data.clone()).into_event(Position {
        epoch: Epoch(1),
        offset: 1,
    });
    a.publish(&event, Origin::fresh()).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(10), subscription.recv())
        .await
        .expect("the large event arrives")
        .expect("the subscription lives");
    let realtime_core::BusMessage::Event(received, _) = received else {
        panic!("expected the event, got {received:?}");
    };
    assert_eq!(received.data.len(), data.len());
    assert!(received.data.iter().all(|&b| b == b'y'));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// An instance that has published for a while reaches one that connects now with its very
/// next publish: `connect` returns only when every publisher's list holds the new queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_gets_the_next_publish_of_an_older_one() {
    let prefix = prefix();
    let config = common::config(&common::endpoint(), &prefix);
    let old = SqsBus::connect(config.clone()).await.unwrap();
    let event = |offset| {
        NewEvent::new("c", "x").into_event(Position {
            epoch: Epoch(1),
            offset,
        })
    };
    old.publish(&event(1), Origin::fresh()).await.unwrap();
    for round in 0..3 {
        let new = SqsBus::connect(config.clone()).await.unwrap();
        let mut subscription = new.subscribe("c").await.unwrap();
        old.publish(&event(round + 2), Origin::fresh())
            .await
            .unwrap();
        let received = tokio::time::timeout(Duration::from_secs(10), subscription.recv()).await;
        assert!(
            matches!(received, Ok(Some(realtime_core::BusMessage::Event(..)))),
            "round {round}: {received:?}"
        );
        new.close().await.unwrap();
    }
    old.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_at_start_is_a_clear_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = SqsBusConfig::local(format!("http://127.0.0.1:{port}"));
    config.operation_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = SqsBus::connect(config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("is an SQS endpoint running"),
        "{error}"
    );
}

/// A message SQS hands over twice (a delete that failed, a visibility timeout that ran out)
/// reaches the subscriber once: the manager drops the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_reaches_the_subscriber_once() {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use realtime_core::{Manager, Message, PublishRequest, SubscribeRequest};
    use realtime_redis::RedisStore;

    let prefix = prefix();
    let config = common::config(&common::endpoint(), &prefix);
    let store = realtime_redis::conformance::store_at(&format!("rt-test:{prefix}:"), 50).await;
    let instance = async |store: Arc<RedisStore>| {
        let bus = Arc::new(SqsBus::connect(config.clone()).await.unwrap());
        let manager = Manager::builder()
            .store(store)
            .bus(bus.clone())
            .build()
            .unwrap();
        (manager, bus)
    };
    let (a, _) = instance(store.clone()).await;
    let (b, receiver) = instance(store).await;
    let mut subscriber = b
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    let next = async |subscriber: &mut realtime_core::Client| match tokio::time::timeout(
        Duration::from_secs(10),
        subscriber.recv(),
    )
    .await
    {
        Ok(Some(Message::Event(event))) => event.event().data.clone(),
        other => panic!("expected an event, got {other:?}"),
    };
    let first = a.publish(PublishRequest::new("c", "once")).await.unwrap();
    assert_eq!(&next(&mut subscriber).await[..], b"once");
    // The same event again, as SQS would redeliver it (under another deduplication id, so
    // that SQS itself does not drop it).
    let frame = realtime_core::frame::encode(&first, Origin::fresh());
    let body = format!("{}.{}", STANDARD.encode("c"), STANDARD.encode(&frame));
    client()
        .send_message()
        .queue_url(receiver.queue_url())
        .message_body(body)
        // The channel's group (FNV-1a of its name), so it comes before the marker below.
        .message_group_id(group_of("c"))
        .message_deduplication_id(format!("copy-{:016x}", Epoch::fresh().0))
        .send()
        .await
        .unwrap();
    a.publish(PublishRequest::new("c", "marker")).await.unwrap();
    assert_eq!(
        &next(&mut subscriber).await[..],
        b"marker",
        "no second copy before it"
    );
}

/// The message group the bus gives `channel`.
fn group_of(channel: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in channel.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
