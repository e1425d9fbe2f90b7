//! What the demo's process tests share.

#![allow(unreachable_pub)]

/// The demo binary, without the `REALTIME_*` settings of the environment the tests run in
/// (a `REALTIME_NATS_URL` meant for a backend's tests would choose the demo's bus).
pub fn demo_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_realtime-demo"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REALTIME_") {
            command.env_remove(name);
        }
    }
    command
}
