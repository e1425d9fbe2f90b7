//! The same server on actix-web 4: SSE at `/events?channel=…`, WebSocket at `/ws`,
//! `POST /publish/{channel}` with a JSON body.
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin actix_app
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};
use realtime_core::{Manager, PublishRequest};
use realtime_sse_actix::{SseHandler, error_response};
use realtime_ws_actix::WsHandler;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let state = web::Data::new(manager.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(sse.resource("/events"))
            .service(ws.resource("/ws"))
            .route("/publish/{channel}", web::post().to(publish))
    })
    // A client that stops reading is dropped by the kernel after this long.
    .on_connect(realtime_sse_actix::on_connect(
        std::time::Duration::from_secs(30),
    ))
    // Signals are handled below: the manager closes first, so every stream ends.
    .disable_signals()
    .shutdown_timeout(5)
    .bind(realtime_scenarios::addr()?)?;
    for addr in server.addrs() {
        realtime_scenarios::announce(addr);
    }
    let server = server.run();
    let handle = server.handle();
    let manager_closes = manager.close_on(realtime_scenarios::termination());
    actix_web::rt::spawn(async move {
        manager_closes.await;
        handle.stop(true).await;
    });
    server.await?;
    // WebSocket sessions run beside the server: let them send their close frames (1001).
    manager
        .drained_within(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}

async fn publish(
    manager: web::Data<Manager>,
    channel: web::Path<String>,
    data: web::Json<serde_json::Value>,
) -> HttpResponse {
    let published = async {
        let request = PublishRequest::json(channel.into_inner(), &data.into_inner())?;
        manager.publish(request).await
    };
    match published.await {
        Ok(event) => HttpResponse::Ok().json(serde_json::json!({ "id": event.id })),
        Err(error) => error_response(&error.into()),
    }
}
