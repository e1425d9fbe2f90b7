//! Tenants from a JWT checked in the authorization hook. Browsers cannot send an
//! `Authorization` header with `EventSource` or a WebSocket, so the token is also taken from
//! a `token` cookie or an `access_token` query parameter. The grant sets the client's tenant
//! (it sees only its tenant's channels: `orders` of tenant A is not `orders` of tenant B),
//! its subject and its client id (to disconnect a user everywhere at logout).
//!
//! ```sh
//! JWT_SECRET=change-me cargo run -p realtime-scenarios --bin jwt_tenants
//! TOKEN=$(curl -s 'http://127.0.0.1:3000/token?user=ann&tenant=acme')
//! curl -N "http://127.0.0.1:3000/events?channel=orders&access_token=$TOKEN" &
//! curl -d '{"id": 7}' -H 'content-type: application/json' 'http://127.0.0.1:3000/publish/orders?tenant=acme'
//! ```
//!
//! `/token` and `/publish` stand in for your login and your back office: protect them.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use realtime_core::{Manager, PublishRequest, SubscribeRequest};
use realtime_sse_axum::{ApiError, Authorize, Grant, Parts, Rejection, SseHandler};
use realtime_ws::WsHandler;
use serde::{Deserialize, Serialize};

/// What the token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: String,
    /// The user's tenant.
    tenant: String,
    /// Expiry, seconds since the Unix epoch (checked by `Validation`).
    exp: u64,
}

#[derive(Clone)]
struct AppState {
    manager: Manager,
    secret: Vec<u8>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("JWT_SECRET")
        .map_err(|_| "set JWT_SECRET (the HS256 key tokens are signed with)")?
        .into_bytes();
    let manager = Manager::builder().build()?;
    let hook = authorize(DecodingKey::from_secret(&secret)?);
    let sse = SseHandler::builder(manager.clone())
        .authorize(hook.clone())
        .build()?;
    // With the token in a cookie, also restrict the WebSocket's origins
    // (`WsConfig::origin_policy`): a cookie is sent by any page that opens a socket.
    let ws = WsHandler::builder(manager.clone())
        .authorize(hook)
        .build()?;
    let state = AppState {
        manager: manager.clone(),
        secret,
    };
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/token", get(token))
        .route("/publish/{channel}", post(publish))
        .with_state(state);
    let listener = realtime_scenarios::listen().await?;
    let shutdown = manager.close_on(realtime_scenarios::termination());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The hook: a valid token grants its tenant and user; none is 401, a bad one 401 too.
fn authorize(key: DecodingKey) -> Authorize<Parts> {
    Authorize::new(move |parts: &Parts, _asked: &SubscribeRequest| {
        // Copy what the check needs out of the borrowed request; the future owns it.
        let token = bearer(parts)
            .or_else(|| cookie(parts, "token"))
            .or_else(|| query(parts, "access_token"));
        let key = key.clone();
        async move {
            let token = token.ok_or_else(|| Rejection::unauthorized("a token is required"))?;
            let claims =
                jsonwebtoken::decode::<Claims>(&token, &key, &Validation::new(Algorithm::HS256))
                    .map_err(|_| Rejection::unauthorized("invalid or expired token"))?
                    .claims;
            Ok(Grant {
                tenant: Some(claims.tenant),
                subject: Some(claims.sub.clone()),
                client_id: Some(claims.sub),
            })
        }
    })
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

fn query(parts: &Parts, name: &str) -> Option<String> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

#[derive(Deserialize)]
struct TokenRequest {
    user: String,
    tenant: String,
}

/// A token for `user` of `tenant`, valid one hour (your login does this).
async fn token(
    State(state): State<AppState>,
    Query(who): Query<TokenRequest>,
) -> Result<String, (StatusCode, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = Claims {
        sub: who.user,
        tenant: who.tenant,
        exp: now + 3600,
    };
    let failed =
        |e: jsonwebtoken::errors::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let key = EncodingKey::from_secret(&state.secret).map_err(failed)?;
    jsonwebtoken::encode(&Header::default(), &claims, &key).map_err(failed)
}

#[derive(Deserialize)]
struct Tenant {
    tenant: Option<String>,
}

/// Publishes the body as JSON data on `channel` of `?tenant=` (every tenant's client of an
/// unscoped channel without it).
async fn publish(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(to): Query<Tenant>,
    Json(data): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut request = PublishRequest::json(channel, &data)?;
    if let Some(tenant) = to.tenant {
        request = request.tenant(tenant);
    }
    let event = state.manager.publish(request).await?;
    Ok(Json(serde_json::json!({ "id": event.id })))
}
