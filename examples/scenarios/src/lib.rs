//! What the scenario programs (`src/bin/*.rs`) share: where they listen and how they stop.
//! Each program is meant to be read on its own; these are the two chores they all do.
//!
//! Run one with `cargo run -p realtime-scenarios --bin minimal_axum [-- 127.0.0.1:3000]`.

use std::net::SocketAddr;

/// The address from the first argument (default `127.0.0.1:3000`; `127.0.0.1:0` picks a free
/// port).
pub fn addr() -> Result<SocketAddr, String> {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    text.parse()
        .map_err(|e| format!("{text:?} is not HOST:PORT: {e}"))
}

/// Binds [`addr`] and says where (`listening on http://…`: the tests read this line).
pub async fn listen() -> Result<tokio::net::TcpListener, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr()?).await?;
    announce(listener.local_addr()?);
    Ok(listener)
}

/// Prints `listening on http://ADDR`.
pub fn announce(addr: SocketAddr) {
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{addr}");
    }
}

/// Resolves on Ctrl-C or SIGTERM (what an orchestrator sends before killing the process).
pub async fn termination() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                () = interrupt => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    interrupt.await;
}
