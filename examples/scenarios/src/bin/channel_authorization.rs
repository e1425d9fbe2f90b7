//! Per-channel authorization: the hook sees the channels a client asks for and refuses the
//! ones it may not read — `public.*` for everyone, `user.<name>` for that user only. On
//! WebSocket it runs again for every in-band `subscribe`, so a connection cannot add a
//! channel it was never granted.
//!
//! The user comes from an `x-user` header here, to keep the example short; in a real
//! deployment it comes from a verified credential (see `jwt_tenants`).
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin channel_authorization
//! curl -N -H 'x-user: ann' 'http://127.0.0.1:3000/events?channel=user.ann'   # streams
//! curl -H 'x-user: ann' 'http://127.0.0.1:3000/events?channel=user.bob'      # 403
//! ```

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use realtime_core::{Manager, PublishRequest, SubscribeRequest};
use realtime_sse_axum::{ApiError, Authorize, Grant, Parts, Rejection, SseHandler};
use realtime_ws::WsHandler;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let hook = Authorize::new(|parts: &Parts, asked: &SubscribeRequest| {
        let user = parts
            .headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let channels: Vec<String> = asked.channels.iter().map(|c| c.channel.clone()).collect();
        async move {
            let user = user.ok_or_else(|| Rejection::unauthorized("who are you? (x-user)"))?;
            // A `.` in an id would let `ann.billing` read what looks like ann's sub-channel.
            if user.is_empty() || user.contains('.') {
                return Err(Rejection::forbidden("not a valid user id"));
            }
            if let Some(refused) = channels.iter().find(|c| !may_read(&user, c)) {
                return Err(Rejection::forbidden(format!(
                    "{user} may not read {refused}"
                )));
            }
            Ok(Grant {
                subject: Some(user),
                ..Grant::default()
            })
        }
    });
    let sse = SseHandler::builder(manager.clone())
        .authorize(hook.clone())
        .build()?;
    let ws = WsHandler::builder(manager.clone())
        .authorize(hook)
        .build()?;
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/publish/{channel}", post(publish))
        .with_state(manager.clone());
    let listener = realtime_scenarios::listen().await?;
    let shutdown = manager.close_on(realtime_scenarios::termination());
    // realtime-sse-axum's server bounds every write (a client that stops reading cannot
    // hold a stream, or the shutdown, forever); `axum::serve` would work without that bound.
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    // WebSocket sessions run beside the server: let them send their close frames (1001).
    manager
        .drained_within(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}

/// The rule: public channels for all, a user's own channel for that user. (In a multi-tenant
/// application, grant the tenant too: `user.ann` of one tenant is not another's.)
fn may_read(user: &str, channel: &str) -> bool {
    channel.starts_with("public.") || channel.strip_prefix("user.") == Some(user)
}

/// Publishes the body as JSON data. Unauthenticated here, to keep the example short: put it
/// behind your own authentication (it can reach every client of the channel).
async fn publish(
    State(manager): State<Manager>,
    Path(channel): Path<String>,
    Json(data): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = manager
        .publish(PublishRequest::json(channel, &data)?)
        .await?;
    Ok(Json(serde_json::json!({ "id": event.id })))
}
