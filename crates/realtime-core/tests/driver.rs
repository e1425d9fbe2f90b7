//! The bus every driver gets: one broker subscription per channel, unreadable frames and
//! reconnects turned into `Interrupted`, frames of another version refused.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use realtime_core::driver::{BusDriver, DriverBus, Inbox};
use realtime_core::{
    Bus, BusMessage, BusSubscription, NewEvent, Origin, Position, Reach, Result, frame,
};

/// A driver that records what the bus asked of it; the test plays the broker through the inbox.
#[derive(Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl BusDriver for Recorder {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        let header = String::from_utf8_lossy(&frame)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        self.calls
            .lock()
            .push(format!("publish {channel} {header}"));
        Ok(())
    }
    async fn subscribe(&self, channel: &str) -> Result<()> {
        self.calls.lock().push(format!("subscribe {channel}"));
        Ok(())
    }
    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.calls.lock().push(format!("unsubscribe {channel}"));
        Ok(())
    }
    fn reach(&self) -> Reach {
        Reach::Network
    }
    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        self.calls.lock().push("close".into());
        Ok(())
    }
}

async fn next(sub: &mut BusSubscription) -> BusMessage {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("a message in time")
        .expect("the subscription is open")
}

async fn poll_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn one_broker_subscription_per_channel_and_honest_messages() {
    let recorder = Recorder::default();
    let inbox = Inbox::new("test", 16);
    let bus = DriverBus::new(recorder.clone(), inbox.clone());
    let mut first = bus.subscribe("c").await.unwrap();
    let mut second = bus.subscribe("c").await.unwrap();
    assert_eq!(
        *recorder.calls.lock(),
        ["subscribe c"],
        "one broker subscription"
    );

    let event = NewEvent::new("c", "hi").into_event(Position::new(realtime_core::Epoch(9), 1));
    bus.publish(&event, Origin(5)).await.unwrap();
    assert_eq!(
        recorder.calls.lock()[1],
        "publish c v1 9 1 5",
        "the v1 frame goes out"
    );
    inbox.frame("c", &frame::encode(&event, Origin(5)));
    for sub in [&mut first, &mut second] {
        assert_eq!(next(sub).await, BusMessage::Event(event.clone(), Origin(5)));
    }
    // A frame of another version is refused, not misread: the subscribers repair instead.
    let mut v2 = frame::encode(&event, Origin(5));
    v2[1] = b'2';
    inbox.frame("c", &v2);
    assert_eq!(next(&mut first).await, BusMessage::Interrupted);
    assert_eq!(next(&mut second).await, BusMessage::Interrupted);
    // A dropped connection is told only once the channel is subscribed again.
    inbox.connection_lost();
    assert!(
        first.try_recv().is_none(),
        "nothing before the resubscription"
    );
    assert_eq!(inbox.to_resubscribe(false), ["c"]);
    inbox.resubscribed("c");
    assert_eq!(next(&mut first).await, BusMessage::Interrupted);
    inbox.resubscribed("c");
    assert!(first.try_recv().is_none(), "told once");

    drop(first);
    drop(second);
    poll_until(
        "the broker subscription ends after the last local one",
        || recorder.calls.lock().last().map(String::as_str) == Some("unsubscribe c"),
    )
    .await;
    assert_eq!(bus.channel_count(), 0);
    inbox.frame("c", &frame::encode(&event, Origin(5)));
    bus.close().await.unwrap();
    assert!(matches!(
        bus.subscribe("c").await,
        Err(realtime_core::Error::Closed)
    ));
}
