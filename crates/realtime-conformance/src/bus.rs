//! The [`Bus`](realtime_core::Bus) contract.

use std::collections::HashMap;

use realtime_core::{Error, Event, NewEvent, Origin};

use crate::Backend;
use crate::support::{DEADLINE, channel, next_bus_event, next_bus_message, ok, text};

/// The origins the two instances of the bus tests publish as.
const A: Origin = Origin(0xa);
const B: Origin = Origin(0xb);

/// Two instances both subscribed: each receives every event once, in each publisher's order.
pub async fn bus_two_instance_fanout(backend: &dyn Backend) {
    let store = ok(backend.store().await, "store");
    let (a, b) = (
        ok(backend.bus().await, "bus a"),
        ok(backend.bus().await, "bus b"),
    );
    let ch = channel("fanout");
    let mut sub_a = ok(a.subscribe(&ch).await, "subscribe a");
    let mut sub_b = ok(b.subscribe(&ch).await, "subscribe b");
    let n = 40;
    let mut published = Vec::new();
    for i in 0..n {
        let event = ok(
            store
                .append(NewEvent::new(
                    &ch,
                    format!("{}{i}", if i % 2 == 0 { "a" } else { "b" }),
                ))
                .await,
            "append",
        );
        let (publisher, origin) = if i % 2 == 0 { (&a, A) } else { (&b, B) };
        ok(publisher.publish(&event, origin).await, "publish");
        published.push(event);
    }
    for (name, sub) in [("instance a", &mut sub_a), ("instance b", &mut sub_b)] {
        let mut received: Vec<Event> = Vec::new();
        while received.len() < n {
            let (event, origin) = next_bus_message(sub, name).await;
            let expected = if text(&event).starts_with('a') { A } else { B };
            assert_eq!(origin, expected, "{name}: the origin must arrive unchanged");
            received.push(event);
        }
        let mut seen = HashMap::new();
        for event in &received {
            *seen.entry(event.id).or_insert(0) += 1;
        }
        for event in &published {
            assert_eq!(
                seen.get(&event.id),
                Some(&1),
                "{name}: {} must arrive exactly once",
                event.id
            );
        }
        for prefix in ["a", "b"] {
            let order: Vec<u64> = received
                .iter()
                .filter(|e| text(e).starts_with(prefix))
                .map(|e| e.id.offset)
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{name}: publisher {prefix}'s events out of order: {order:?}"
            );
        }
        let sample = received
            .iter()
            .find(|e| e.id == published[3].id)
            .map(|e| (e.data.clone(), e.channel.clone()));
        assert_eq!(
            sample,
            Some((published[3].data.clone(), ch.clone())),
            "{name}: payload must arrive intact"
        );
    }
}

/// Dropping one of two subscriptions leaves the other receiving each event once; after all are
/// dropped, a new subscription receives only what is published after it.
pub async fn bus_unsubscribe_stops_delivery(backend: &dyn Backend) {
    let store = ok(backend.store().await, "store");
    let bus = ok(backend.bus().await, "bus");
    let ch = channel("unsubscribe");
    let publish = |data: &'static str| {
        let store = store.clone();
        let bus = bus.clone();
        let ch = ch.clone();
        async move {
            let event = ok(store.append(NewEvent::new(&ch, data)).await, "append");
            ok(bus.publish(&event, A).await, "publish");
            event
        }
    };
    let first = ok(bus.subscribe(&ch).await, "subscribe 1");
    let mut second = ok(bus.subscribe(&ch).await, "subscribe 2");
    drop(first);
    let e1 = publish("e1").await;
    let e2 = publish("e2").await;
    assert_eq!(
        next_bus_event(&mut second, "remaining subscription")
            .await
            .id,
        e1.id
    );
    assert_eq!(
        next_bus_event(&mut second, "remaining subscription")
            .await
            .id,
        e2.id,
        "each event once on the remaining subscription"
    );
    drop(second);
    let mut third = ok(bus.subscribe(&ch).await, "subscribe 3");
    let e3 = publish("e3").await;
    let e4 = publish("e4").await;
    assert_eq!(
        next_bus_event(&mut third, "new subscription").await.id,
        e3.id,
        "nothing from before"
    );
    assert_eq!(
        next_bus_event(&mut third, "new subscription").await.id,
        e4.id
    );
}

/// Closing a bus ends its subscriptions and refuses further work.
pub async fn bus_close(backend: &dyn Backend) {
    let bus = ok(backend.bus().await, "bus");
    let ch = channel("busclose");
    let mut sub = ok(bus.subscribe(&ch).await, "subscribe");
    ok(bus.close().await, "close");
    ok(bus.close().await, "second close");
    match tokio::time::timeout(DEADLINE, async { while sub.recv().await.is_some() {} }).await {
        Ok(()) => {}
        Err(_) => panic!("subscription did not end within {DEADLINE:?} of close"),
    }
    let event = NewEvent::new(&ch, "x")
        .into_event(realtime_core::Position::new(realtime_core::Epoch(1), 1));
    assert!(
        matches!(bus.publish(&event, A).await, Err(Error::Closed)),
        "publish after close"
    );
    assert!(
        matches!(bus.subscribe(&ch).await, Err(Error::Closed)),
        "subscribe after close"
    );
}
