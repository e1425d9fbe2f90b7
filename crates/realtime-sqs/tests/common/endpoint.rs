//! A moto server of the test's own (`realtime_conformance::restart::OwnServer`), keeping its
//! state in memory: a restart comes back empty, every queue gone. Fault tests never touch the
//! shared endpoint on 4566.

use std::process::Command;

use realtime_conformance::restart::OwnServer;

/// Starts moto on a free port of 127.0.0.1 (`pip install 'moto[server]'`; `cargo xtask test`
/// installs it).
pub fn own_endpoint() -> OwnServer {
    OwnServer::start(|port| {
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        command
    })
}
