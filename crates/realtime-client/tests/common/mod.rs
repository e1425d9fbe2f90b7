//! What the client's test files share: reading the next update within a deadline.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use realtime_client::{RealtimeClient, ReceivedEvent, Update};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub async fn next(client: &mut RealtimeClient) -> Update {
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Ok(update))) => update,
        other => panic!("expected an update, got {other:?}"),
    }
}

pub async fn next_event(client: &mut RealtimeClient) -> ReceivedEvent {
    match next(client).await {
        Update::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}
