//! The transport suite against the axum adapters and the actix-web adapters: the same
//! tests, so a difference between the two frameworks fails one.

use std::future::Future;
use std::pin::Pin;

use realtime_conformance::transport::{Serve, Setup};

/// `realtime-sse-axum` and `realtime-ws` on one axum router, served by the SSE `Server`.
struct Axum;

impl Serve for Axum {
    fn serve(&self, setup: &Setup) -> Pin<Box<dyn Future<Output = String> + '_>> {
        let setup = setup.clone();
        Box::pin(async move {
            let sse = realtime_sse_axum::SseHandler::builder(setup.manager.clone())
                .config(setup.sse)
                .build()
                .expect("sse handler");
            let ws = realtime_ws::WsHandler::builder(setup.manager)
                .config(setup.ws)
                .build()
                .expect("ws handler");
            let app = axum::Router::new()
                .route("/events", sse.get())
                .route("/ws", ws.get());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            let server = realtime_sse_axum::Server::new().write_timeout(Setup::WRITE_TIMEOUT);
            tokio::spawn(server.serve(listener, app, std::future::pending()));
            format!("http://{addr}")
        })
    }
}

/// `realtime-sse-actix` and `realtime-ws-actix` on one actix-web `App`.
struct Actix;

impl Serve for Actix {
    fn serve(&self, setup: &Setup) -> Pin<Box<dyn Future<Output = String> + '_>> {
        let setup = setup.clone();
        Box::pin(async move {
            let sse = realtime_sse_actix::SseHandler::builder(setup.manager.clone())
                .config(setup.sse)
                .build()
                .expect("sse handler");
            let ws = realtime_ws_actix::WsHandler::builder(setup.manager)
                .config(setup.ws)
                .build()
                .expect("ws handler");
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .service(sse.resource("/events"))
                    .service(ws.resource("/ws"))
            })
            .workers(1)
            .on_connect(realtime_sse_actix::on_connect(Setup::WRITE_TIMEOUT))
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind");
            let addr = server.addrs()[0];
            actix_web::rt::spawn(server.run());
            format!("http://{addr}")
        })
    }
}

mod axum_adapters {
    realtime_conformance::transport_tests!(super::Axum, #[tokio::test]);
}

mod actix_adapters {
    realtime_conformance::transport_tests!(super::Actix, #[actix_web::test]);
}
