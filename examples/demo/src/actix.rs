//! The demo on actix-web: the same page and API as on axum, over `realtime-sse-actix`,
//! `realtime-ws-actix` and [`crate::api`].

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use realtime_core::Manager;
use realtime_http::ApiError;
use realtime_sse_actix::SseHandler;
use realtime_ws_actix::WsHandler;

use crate::{AppState, Options, api, metrics_handle};

fn json(status: u16, body: &serde_json::Value) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(body)
}

fn error(error: &ApiError) -> HttpResponse {
    realtime_sse_actix::error_response(error)
}

async fn publish(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let headers = request.headers();
    let key = headers.get("idempotency-key").map(|v| v.as_bytes());
    let published = async {
        api::require_json(headers.get("content-type").map(|v| v.as_bytes()))?;
        let body = api::read_body(payload).await?;
        api::publish(&state.manager, key, &body).await
    };
    match published.await {
        Ok(answer) => json(200, &answer),
        Err(e) => error(&e),
    }
}

/// The demo's `App`: the page, `/events`, `/ws`, `/publish`, `/stats`, `/healthz`,
/// `/readyz`, `/metrics`, `/admin/disconnect-all`.
fn configure(
    config: &mut web::ServiceConfig,
    state: web::Data<AppState>,
    sse: &SseHandler,
    ws: &WsHandler,
) {
    config
        .app_data(state)
        .route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(crate::PAGE)
            }),
        )
        .route(
            "/realtime.js",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/javascript; charset=utf-8")
                    .body(crate::CLIENT_JS)
            }),
        )
        .service(sse.resource("/events"))
        .service(ws.resource("/ws"))
        .route("/publish", web::post().to(publish))
        .route(
            "/stats",
            web::get().to(|state: web::Data<AppState>| async move {
                json(200, &api::stats(&state.manager))
            }),
        )
        .route(
            "/healthz",
            web::get().to(|| async { json(200, &serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            web::get().to(|state: web::Data<AppState>| async move {
                let (status, body) = api::readiness(&state.manager).await;
                json(status.as_u16(), &body)
            }),
        )
        .route(
            "/metrics",
            web::get().to(|state: web::Data<AppState>| async move {
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4")
                    .body(state.metrics.render())
            }),
        )
        .route(
            "/admin/disconnect-all",
            web::post().to(|state: web::Data<AppState>| async move {
                json(200, &api::disconnect_all(&state.manager))
            }),
        );
}

/// Serves the demo on actix-web until Ctrl-C or SIGTERM, then closes the manager so every
/// stream ends cleanly, then stops the server. Runs inside an actix `System`.
pub(crate) async fn run(
    options: Options,
    manager: Manager,
) -> Result<(), Box<dyn std::error::Error>> {
    let (sse_config, ws_config) = crate::endpoint_configs(options.retry_ms);
    // The kernel frees a socket whose client stopped reading, after the longer of the two
    // write timeouts (the endpoints release the client itself at their own).
    let unread = sse_config.write_timeout.max(ws_config.write_timeout);
    let sse = SseHandler::builder(manager.clone())
        .config(sse_config)
        .build()?;
    let ws = WsHandler::builder(manager.clone())
        .config(ws_config)
        .build()?;
    let state = web::Data::new(AppState {
        manager: manager.clone(),
        metrics: metrics_handle(),
    });
    let server = HttpServer::new(move || {
        let (state, sse, ws) = (state.clone(), sse.clone(), ws.clone());
        App::new().configure(move |config| configure(config, state, &sse, &ws))
    })
    .on_connect(realtime_sse_actix::on_connect(unread))
    .disable_signals()
    // Streams end when the manager closes; what is left after this is cut.
    .shutdown_timeout(5)
    .bind(options.addr)?;
    let addr = server.addrs().first().copied().ok_or("no address bound")?;
    // Scripts (and the browser test) read this line to find the port.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{addr}");
    }
    tracing::info!(%addr, "realtime demo listening (actix-web)");
    let server = server.run();
    let handle = server.handle();
    let shutdown = manager.close_on(crate::termination());
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    manager
        .drained_within(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}
