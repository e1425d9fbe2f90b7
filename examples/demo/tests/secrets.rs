//! The demo given a NATS password (through a `_FILE` environment variable, as a container
//! platform mounts a secret, or inside the URL), against a nats-server of the test's own
//! that requires it: it runs, and the password shows nowhere — not in its log (at `trace`,
//! async-nats's own lines included), `/stats`, `/metrics`, `/readyz`, its command line, nor
//! in the error of a run with a wrong one.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use realtime_conformance::restart::OwnServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;

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

/// How the demo is given the password.
enum Given<'a> {
    /// `REALTIME_NATS_USER` and `REALTIME_NATS_PASSWORD_FILE`.
    File(&'a std::path::Path),
    /// In `REALTIME_NATS_URL` itself.
    InUrl(&'a str),
}

/// A running (or failed) demo: its address if it started, and its whole log once it ends.
struct Demo {
    process: Child,
    address: Option<String>,
    log: JoinHandle<String>,
}

impl Demo {
    async fn start(server: &OwnServer, given: Given<'_>) -> Demo {
        let mut command = common::demo_command();
        match given {
            Given::File(path) => command
                .env(
                    "REALTIME_NATS_URL",
                    format!("nats://127.0.0.1:{}", server.port),
                )
                .env("REALTIME_NATS_USER", "app")
                .env("REALTIME_NATS_PASSWORD_FILE", path),
            Given::InUrl(password) => command.env(
                "REALTIME_NATS_URL",
                format!("nats://app:{password}@127.0.0.1:{}", server.port),
            ),
        };
        let mut process = command
            .env("REALTIME_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = process.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text).await;
            String::from_utf8_lossy(&text).into_owned()
        });
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .unwrap()
            .unwrap();
        let address =
            first.and_then(|line| line.strip_prefix("listening on http://").map(str::to_owned));
        Demo {
            process,
            address,
            log,
        }
    }

    /// Stops it (SIGTERM) if it runs; its whole log, read to its end.
    async fn finish(mut self) -> String {
        if let Some(pid) = self.process.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        tokio::time::timeout(DEADLINE, self.process.wait())
            .await
            .expect("the demo did not exit")
            .unwrap();
        tokio::time::timeout(DEADLINE, self.log)
            .await
            .expect("its log did not end")
            .unwrap()
    }
}

fn scratch_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rt-demo-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The demo runs on the password and shows it nowhere.
async fn runs_and_shows_nowhere(given: Given<'_>) {
    let server = nats_with_password();
    let demo = Demo::start(&server, given).await;
    let Some(base) = demo.address.clone() else {
        panic!("the demo did not start: {}", demo.finish().await);
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
    let pid = demo.process.id().unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!cmdline.contains(PASSWORD), "{cmdline}");
    let log = demo.finish().await;
    assert!(log.contains("running on a NATS bus"), "{log}");
    // async-nats logs the server it connects to at debug: it must not carry the password.
    assert!(
        log.contains("attempting connection"),
        "no client log at trace: {log}"
    );
    assert!(!log.contains(PASSWORD), "the log shows the password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_from_a_file_works_and_shows_nowhere() {
    let file = scratch_file("nats-password", &format!("{PASSWORD}\n"));
    runs_and_shows_nowhere(Given::File(&file)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_works_and_shows_nowhere() {
    runs_and_shows_nowhere(Given::InUrl(PASSWORD)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_that_shows_no_password() {
    let server = nats_with_password();
    const WRONG: &str = "wrong-pa55word-also-secret";
    let file = scratch_file("wrong-password", WRONG);
    let demo = Demo::start(&server, Given::File(&file)).await;
    assert!(demo.address.is_none(), "started with a wrong password");
    let log = demo.finish().await;
    assert!(log.contains("refused the credentials"), "{log}");
    assert!(
        !log.contains(WRONG) && !log.contains(PASSWORD),
        "the log shows a password"
    );
}
