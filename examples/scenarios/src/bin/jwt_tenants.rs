//! Tenants from a JWT checked in the authorization hook. Browsers cannot send an
//! `Authorization` header with `EventSource` or a WebSocket, so the token is also taken from
//! a `token` cookie or an `access_token` query parameter. The grant sets the client's tenant
//! (it sees only its tenant's channels: `orders` of tenant A is not `orders` of tenant B),
//! its subject and its client id (to disconnect a user everywhere at logout).
//!
//! ```sh
//! export JWT_SECRET=$(head -c 32 /dev/urandom | base64)   # at least 32 bytes
//! DEV_TOKENS=1 cargo run -p realtime-scenarios --bin jwt_tenants
//! TOKEN=$(curl -s 'http://127.0.0.1:3000/token?user=ann&tenant=acme')
//! curl -N "http://127.0.0.1:3000/events?channel=orders&access_token=$TOKEN" &
//! curl -d '{"id": 7}' -H 'content-type: application/json' 'http://127.0.0.1:3000/publish/orders?tenant=acme'
//! ```
//!
//! `/token` (served only with `DEV_TOKENS=1`) and `/publish` stand in for your login and your
//! back office: protect them. The token is checked when a stream opens (and on every
//! WebSocket subscribe): a stream outlives its token's expiry unless you disconnect the
//! client then (`Manager::disconnect_everywhere`). A token in the query string shows up in
//! access logs: keep such tokens short-lived.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use realtime_core::{Manager, PublishRequest, SubscribeRequest};
use realtime_sse_axum::{ApiError, Authorize, Grant, Parts, Rejection, SseHandler};
use realtime_ws::{OriginPolicy, WsConfig, WsHandler};
use serde::{Deserialize, Serialize};

/// Who issues the tokens and for whom: checked, so a token of another service that happens
/// to share the secret is refused.
const ISSUER: &str = "realtime-scenarios";
const AUDIENCE: &str = "realtime";

/// What the token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: String,
    /// The user's tenant.
    tenant: String,
    /// Expiry, seconds since the Unix epoch (checked by `Validation`).
    exp: u64,
    iss: String,
    aud: String,
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
    if secret.len() < 32 {
        return Err("JWT_SECRET must be at least 32 bytes".into());
    }
    let manager = Manager::builder().build()?;
    let hook = authorize(DecodingKey::from_secret(&secret)?);
    let sse = SseHandler::builder(manager.clone())
        .authorize(hook.clone())
        .build()?;
    // A cookie is sent by any page that opens a socket to this host: only our own pages may
    // (cross-site WebSocket hijacking). Services send no Origin and authenticate by header.
    let mut ws_config = WsConfig::default();
    let origins = std::env::var("ALLOWED_ORIGINS")
        .unwrap_or_else(|_| "http://127.0.0.1:3000,http://localhost:3000".to_owned());
    ws_config.origin_policy = OriginPolicy::allow_list(origins.split(','));
    ws_config.allow_missing_origin = true;
    let ws = WsHandler::builder(manager.clone())
        .config(ws_config)
        .authorize(hook)
        .build()?;
    let state = AppState {
        manager: manager.clone(),
        secret,
    };
    let mut app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/publish/{channel}", post(publish));
    if std::env::var_os("DEV_TOKENS").is_some() {
        app = app.route("/token", get(token));
    }
    let app = app.with_state(state);
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
            // HS256 only (never the algorithm the token names), `exp` required and checked.
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&[AUDIENCE]);
            let claims = jsonwebtoken::decode::<Claims>(&token, &key, &validation)
                .map_err(|_| Rejection::unauthorized("invalid or expired token"))?
                .claims;
            Ok(Grant {
                // Logging a user out disconnects this user of this tenant, not namesakes.
                client_id: Some(format!("{}:{}", claims.tenant, claims.sub)),
                tenant: Some(claims.tenant),
                subject: Some(claims.sub),
            })
        }
    })
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
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
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
    };
    let failed =
        |e: jsonwebtoken::errors::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let key = EncodingKey::from_secret(&state.secret).map_err(failed)?;
    jsonwebtoken::encode(&Header::default(), &claims, &key).map_err(failed)
}

#[derive(Deserialize)]
struct Tenant {
    tenant: String,
}

/// Publishes the body as JSON data on `channel` of `?tenant=` (required: an event without a
/// tenant would reach every tenant's clients). Unauthenticated here: your back office
/// protects it.
async fn publish(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(to): Query<Tenant>,
    Json(data): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = PublishRequest::json(channel, &data)?.tenant(to.tenant);
    let event = state.manager.publish(request).await?;
    Ok(Json(serde_json::json!({ "id": event.id })))
}
