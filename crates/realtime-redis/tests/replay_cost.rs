//! What a resume costs Redis: a `Last-Event-ID` that cannot be served (wrong epoch, trimmed,
//! past the head) is answered with a gap, and must not make Redis read and send the history
//! it then throws away. Measured as Redis's own output bytes (`INFO stats`), on a server of
//! the test's own so that no other test's traffic is counted.

#![allow(clippy::unwrap_used)]

mod common;

use common::server::{OwnRedis, Persistence};
use common::unique_prefix;
use realtime_core::{Epoch, GapReason, NewEvent, Position, Store};
use realtime_redis::{RedisStore, RedisStoreConfig};

const EVENTS: u64 = 1_000;
const EVENT_BYTES: usize = 1_024;

/// Redis's `total_net_output_bytes`, read on a connection of its own.
fn output_bytes(server: &OwnRedis) -> u64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut connection)
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_net_output_bytes")
}

/// Redis's output while `read` runs, less what the measuring `INFO` itself sent.
async fn cost_of(
    server: &OwnRedis,
    store: &RedisStore,
    after: Position,
) -> (u64, realtime_core::ReadResult) {
    let baseline = {
        let first = output_bytes(server);
        output_bytes(server) - first
    };
    let before = output_bytes(server);
    let read = store.read("history", after, EVENTS as usize).await.unwrap();
    let spent = output_bytes(server) - before - baseline;
    (spent, read)
}

#[tokio::test]
async fn a_resume_that_cannot_be_served_costs_redis_no_history() {
    let server = OwnRedis::start(Persistence::None);
    let mut config = RedisStoreConfig::new(server.url());
    config.prefix = unique_prefix();
    config.max_events_per_channel = EVENTS as usize;
    let store = RedisStore::connect(config).await.unwrap();
    let data = "x".repeat(EVENT_BYTES);
    let mut head = Position::start(Epoch::NONE);
    for _ in 0..EVENTS + 100 {
        head = store
            .append(NewEvent::new("history", data.clone()))
            .await
            .unwrap()
            .id;
    }
    let oldest = head.offset - EVENTS + 1;

    // A resume that can be served reads the history: the measure sees entries.
    let (spent, read) = cost_of(&server, &store, Position::new(head.epoch, oldest + 499)).await;
    assert_eq!((read.gap, read.events.len()), (None, 500));
    assert!(spent > 500 * EVENT_BYTES as u64, "{spent} bytes");

    let wrong_epoch = Epoch(head.epoch.0 ^ 1);
    for (after, expected) in [
        (
            Position::new(wrong_epoch, oldest + 10),
            GapReason::EpochChanged,
        ),
        (Position::new(head.epoch, oldest - 50), GapReason::Trimmed),
        (
            Position::new(head.epoch, head.offset + 7),
            GapReason::UnknownPosition,
        ),
        (Position::new(Epoch::NONE, 3), GapReason::UnknownPosition),
    ] {
        let (spent, read) = cost_of(&server, &store, after).await;
        eprintln!("{expected:?}: Redis sent {spent} bytes");
        assert_eq!(read.gap, Some(expected), "after {after:?}");
        assert!(read.events.is_empty());
        // The answer is epoch, head and the oldest entry's id (64 bytes here), never the
        // thousand entries (1,088,233 bytes) a read after a wrong position used to send.
        assert!(
            spent < 512,
            "a resume after {after:?} made Redis send {spent} bytes"
        );
    }
}
