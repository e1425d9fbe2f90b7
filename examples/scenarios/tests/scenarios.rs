//! Each scenario program, started as a process on a free port and used as a client would.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use realtime_client::{DataFormat, Error, RealtimeClient, ReceivedEvent, Update};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(15);

/// A running scenario program; killed when dropped.
struct Program {
    child: Child,
    base: String,
}

impl Program {
    async fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Program {
        let mut child = Command::new(bin)
            .arg("127.0.0.1:0")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(base) = line.strip_prefix("listening on ") {
                    return base.to_owned();
                }
            }
            panic!("{bin} ended before listening");
        })
        .await
        .unwrap_or_else(|_| panic!("{bin} did not start within {DEADLINE:?}"));
        Program { child, base }
    }

    fn ws(&self) -> String {
        format!("{}/ws", self.base.replacen("http://", "ws://", 1))
    }

    fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    async fn publish(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}/publish/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }
}

async fn next(client: &mut RealtimeClient) -> Update {
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Ok(update))) => update,
        other => panic!("expected an update, got {other:?}"),
    }
}

/// The next event, past connection changes.
async fn next_event(client: &mut RealtimeClient) -> ReceivedEvent {
    loop {
        match next(client).await {
            Update::Event(event) => return event,
            Update::Connected { .. } => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

async fn connected(client: &mut RealtimeClient) {
    match next(client).await {
        Update::Connected { .. } => {}
        other => panic!("expected to connect, got {other:?}"),
    }
}

/// The final error a refused client ends with.
async fn refused(mut client: RealtimeClient) -> u16 {
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Err(Error::Refused { status, .. }))) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Publishing JSON reaches a WebSocket client as JSON and an SSE client as its text.
async fn publishes_json_to_both_transports(program: &Program) {
    let mut ws = RealtimeClient::websocket(program.ws())
        .channel("orders")
        .build()
        .unwrap();
    let mut sse = RealtimeClient::sse(program.events())
        .channel("orders")
        .build()
        .unwrap();
    connected(&mut ws).await;
    connected(&mut sse).await;
    let answer = program
        .publish("orders", serde_json::json!({"id": 7}))
        .await;
    let event = next_event(&mut ws).await;
    assert_eq!(
        (event.format, event.id.as_str()),
        (DataFormat::Json, answer["id"].as_str().unwrap())
    );
    assert_eq!(
        event.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"id": 7})
    );
    assert_eq!(next_event(&mut sse).await.text(), Some(r#"{"id":7}"#));
}

#[tokio::test]
async fn minimal_axum() {
    let program = Program::start(env!("CARGO_BIN_EXE_minimal_axum"), &[], &[]).await;
    publishes_json_to_both_transports(&program).await;
}

#[tokio::test]
async fn actix_app() {
    let program = Program::start(env!("CARGO_BIN_EXE_actix_app"), &[], &[]).await;
    publishes_json_to_both_transports(&program).await;
}

#[tokio::test]
async fn jwt_tenants() {
    const SECRET: &str = "a-test-secret-of-at-least-32-bytes";
    let secret = [("JWT_SECRET", SECRET), ("DEV_TOKENS", "1")];
    let program = Program::start(env!("CARGO_BIN_EXE_jwt_tenants"), &[], &secret).await;
    let token = |user: &'static str, tenant: &'static str| {
        let url = format!("{}/token?user={user}&tenant={tenant}", program.base);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let ann = token("ann", "acme").await;
    // A browser's EventSource: the token in the query.
    let url = format!("{}?access_token={ann}", program.events());
    let mut sse = RealtimeClient::sse(url).channel("orders").build().unwrap();
    // A service: the Bearer header.
    let mut ws = RealtimeClient::websocket(program.ws())
        .channel("orders")
        .header(
            "authorization",
            format!("Bearer {}", token("bob", "globex").await),
        )
        .build()
        .unwrap();
    connected(&mut sse).await;
    connected(&mut ws).await;
    program
        .publish("orders?tenant=globex", serde_json::json!({"for": "globex"}))
        .await;
    program
        .publish("orders?tenant=acme", serde_json::json!({"for": "acme"}))
        .await;
    assert_eq!(
        next_event(&mut sse).await.text(),
        Some(r#"{"for":"acme"}"#),
        "only its tenant's"
    );
    assert_eq!(
        next_event(&mut ws).await.text(),
        Some(r#"{"for":"globex"}"#)
    );
    // A cookie works too; no token is 401, a forged one too.
    let with_cookie = reqwest::Client::new()
        .get(format!("{}?channel=orders", program.events()))
        .header("cookie", format!("theme=dark; token={ann}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    let none = RealtimeClient::sse(program.events())
        .channel("orders")
        .build()
        .unwrap();
    assert_eq!(refused(none).await, 401);
    let forged = format!("{}?access_token={ann}x", program.events());
    let forged = RealtimeClient::sse(forged)
        .channel("orders")
        .build()
        .unwrap();
    assert_eq!(refused(forged).await, 401);
    // Signed with the right key but expired, or for another audience: refused too.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    for (exp, aud) in [(now - 3600, "realtime"), (now + 3600, "another-service")] {
        let claims = serde_json::json!({"sub": "ann", "tenant": "acme", "exp": exp,
            "iss": "realtime-scenarios", "aud": aud});
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let client = RealtimeClient::sse(program.events())
            .channel("orders")
            .header("authorization", format!("Bearer {token}"))
            .build()
            .unwrap();
        assert_eq!(refused(client).await, 401, "exp {exp}, aud {aud}");
    }
}

#[tokio::test]
async fn channel_authorization() {
    let program = Program::start(env!("CARGO_BIN_EXE_channel_authorization"), &[], &[]).await;
    let as_ann = |channel: &str| {
        RealtimeClient::sse(program.events())
            .channel(channel)
            .header("x-user", "ann")
            .build()
            .unwrap()
    };
    let mut own = as_ann("user.ann");
    connected(&mut own).await;
    let mut public = as_ann("public.news");
    connected(&mut public).await;
    assert_eq!(refused(as_ann("user.bob")).await, 403);
    let anonymous = RealtimeClient::sse(program.events())
        .channel("public.news")
        .build()
        .unwrap();
    assert_eq!(refused(anonymous).await, 401);
    // On WebSocket the hook runs for the connection's channels too.
    let mut ws = RealtimeClient::websocket(program.ws())
        .channel("user.bob")
        .header("x-user", "ann")
        .build()
        .unwrap();
    match tokio::time::timeout(DEADLINE, ws.next()).await {
        Ok(Some(Err(Error::SubscriptionRefused { code, .. }))) => assert_eq!(code, "forbidden"),
        other => panic!("expected a refused subscription, got {other:?}"),
    }
    program
        .publish("user.ann", serde_json::json!("for ann"))
        .await;
    assert_eq!(next_event(&mut own).await.text(), Some(r#""for ann""#));
}

#[tokio::test]
async fn background_publisher() {
    let program = Program::start(env!("CARGO_BIN_EXE_background_publisher"), &[], &[]).await;
    let mut ticks = RealtimeClient::websocket(program.ws())
        .channel("ticks")
        .build()
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = next_event(&mut ticks).await;
        seen.push(
            event.json::<serde_json::Value>().unwrap()["n"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive ticks: {seen:?}"
    );
}

#[tokio::test]
async fn two_instances_redis() {
    let redis = "127.0.0.1:6379";
    assert!(
        tokio::net::TcpStream::connect(redis).await.is_ok(),
        "Redis is not running on {redis}: start it with `cargo xtask services`"
    );
    let url = format!("redis://{redis}");
    let bin = env!("CARGO_BIN_EXE_two_instances_redis");
    let (a, b) = (
        Program::start(bin, &[], &[("REDIS_URL", &url)]).await,
        Program::start(bin, &[], &[("REDIS_URL", &url)]).await,
    );
    let channel = format!("scenario-{}", std::process::id());
    let mut on_b = RealtimeClient::websocket(b.ws())
        .channel(&channel)
        .build()
        .unwrap();
    connected(&mut on_b).await;
    a.publish(&channel, serde_json::json!(1)).await;
    let first = next_event(&mut on_b).await;
    drop(on_b);
    // Published while the client is away; it comes back on the other instance.
    let missed = b.publish(&channel, serde_json::json!(2)).await;
    let mut on_a = RealtimeClient::sse(a.events())
        .resume(&channel, &first.id)
        .build()
        .unwrap();
    let event = next_event(&mut on_a).await;
    assert_eq!(
        event.id,
        missed["id"].as_str().unwrap(),
        "resumed exactly on the other instance"
    );
}

#[tokio::test]
async fn graceful_shutdown() {
    let mut program = Program::start(env!("CARGO_BIN_EXE_graceful_shutdown"), &[], &[]).await;
    let mut sse = RealtimeClient::sse(program.events())
        .channel("orders")
        .reconnect_delays(Duration::from_secs(30), Duration::from_secs(60))
        .build()
        .unwrap();
    connected(&mut sse).await;
    let ready = reqwest::get(format!("{}/readyz", program.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let pid = program.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    match next(&mut sse).await {
        Update::Disconnected { .. } => {}
        other => panic!("the stream must end, got {other:?}"),
    }
    let status = tokio::time::timeout(DEADLINE, program.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exits 0 after SIGTERM: {status}");
}

#[tokio::test]
async fn in_process_consumer() {
    let program = Program::start(env!("CARGO_BIN_EXE_in_process_consumer"), &[], &[]).await;
    for amount in [5, 7] {
        program
            .publish("orders", serde_json::json!({"amount": amount}))
            .await;
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let total: serde_json::Value = reqwest::get(format!("{}/total", program.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if total["total"] == 12 {
            assert_eq!(total["stale"], false);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "total {total}, not 12"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling interval
    }
}
