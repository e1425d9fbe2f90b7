//! The demo given a NATS password through a `_FILE` environment variable (as a container
//! platform mounts a secret), against a nats-server of the test's own that requires it: it
//! runs, and the password shows nowhere — not in its log (at `trace`), `/stats`,
//! `/metrics`, `/readyz`, nor in the error of a run with a wrong one.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use realtime_conformance::restart::OwnServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(20);
const PASSWORD: &str = "nats-pa55word-that-must-never-show";

fn nats_with_password() -> OwnServer {
    OwnServer::start(|port| {
        let mut command = std::process::Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--user", "app", "--pass", PASSWORD]);
        command
    })
}

/// The demo with `password_file` as its NATS password file; its stdout's first line (or
/// `None` if it exited) and everything it logs, kept.
async fn demo(
    server: &OwnServer,
    password_file: &std::path::Path,
) -> (tokio::process::Child, Option<String>, Arc<Mutex<String>>) {
    let mut demo = common::demo_command()
        .env("REALTIME_ADDR", "127.0.0.1:0")
        .env(
            "REALTIME_NATS_URL",
            format!("nats://127.0.0.1:{}", server.port),
        )
        .env("REALTIME_NATS_USER", "app")
        .env("REALTIME_NATS_PASSWORD_FILE", password_file)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = demo.stderr.take().unwrap();
    let kept = log.clone();
    tokio::spawn(async move {
        let mut chunk = vec![0; 64 * 1024];
        while let Ok(read) = stderr.read(&mut chunk).await {
            if read == 0 {
                break;
            }
            kept.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let address =
        first.and_then(|line| line.strip_prefix("listening on http://").map(str::to_owned));
    (demo, address, log)
}

fn scratch_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rt-demo-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_from_a_file_works_and_shows_nowhere() {
    let server = nats_with_password();
    let file = scratch_file("nats-password", &format!("{PASSWORD}\n"));
    let (mut process, address, log) = demo(&server, &file).await;
    let Some(base) = address else {
        panic!("the demo did not start: {}", log.lock().unwrap());
    };
    let client = reqwest::Client::new();
    let published = client
        .post(format!("http://{base}/publish"))
        .header("content-type", "application/json")
        .body(r#"{"channel":"c","data":"hello"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    let mut shown = String::new();
    for path in ["/stats", "/metrics", "/readyz", "/healthz"] {
        let response = client
            .get(format!("http://{base}{path}"))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        shown.push_str(&response.text().await.unwrap());
    }
    assert!(
        !shown.contains(PASSWORD),
        "an endpoint shows the password: {shown}"
    );
    let pid = process.id().unwrap().to_string();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!cmdline.contains(PASSWORD), "{cmdline}");
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await;
    let _ = tokio::time::timeout(DEADLINE, process.wait()).await;
    let log = log.lock().unwrap().clone();
    assert!(log.contains("running on a NATS bus"), "{log}");
    assert!(!log.contains(PASSWORD), "the log shows the password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_that_shows_no_password() {
    let server = nats_with_password();
    const WRONG: &str = "wrong-pa55word-also-secret";
    let file = scratch_file("wrong-password", WRONG);
    let (mut process, address, log) = demo(&server, &file).await;
    assert!(address.is_none(), "started with a wrong password");
    let status = tokio::time::timeout(DEADLINE, process.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    // The log is read to its end once the process is gone.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !log.lock().unwrap().contains("realtime-demo:") {
        assert!(tokio::time::Instant::now() < deadline, "no error printed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = log.lock().unwrap().clone();
    assert!(log.contains("refused the credentials"), "{log}");
    assert!(
        !log.contains(WRONG) && !log.contains(PASSWORD),
        "the log shows a password"
    );
}
