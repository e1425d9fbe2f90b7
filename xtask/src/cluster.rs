//! A local Redis Cluster for the `redis-cluster` tests: three masters and three replicas on
//! ports 30001–30006, made from the machine's `redis-server`, data under
//! `target/services/redis-cluster` (nothing persisted). Like the machine's other services it
//! outlives the run; a run finding it healthy reuses it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::run;

/// The first node; the tests discover the others from it.
pub(crate) const FIRST_PORT: u16 = 30001;
const NODES: u16 = 6;

/// Makes sure a healthy six-node cluster answers on the ports, creating it if not.
pub(crate) fn ensure_redis_cluster() -> Result<(), String> {
    if (0..NODES).all(|i| healthy(FIRST_PORT + i)) {
        return Ok(());
    }
    eprintln!(
        "xtask: starting a local Redis Cluster on ports {FIRST_PORT}–{}",
        FIRST_PORT + NODES - 1
    );
    let dir = crate::workspace_root().join("target/services/redis-cluster");
    // Whatever is left of an earlier one (a node killed, a half-made cluster) starts over;
    // a server on these ports that is not ours (its data directory elsewhere) is left alone.
    for i in 0..NODES {
        let port = FIRST_PORT + i;
        if !answers(port) {
            continue;
        }
        let ours = redis_cli(port, &["config", "get", "dir"])
            .is_some_and(|out| out.contains(dir.to_string_lossy().as_ref()));
        if !ours {
            return Err(format!(
                "port {port} is taken by a Redis that is not this project's local cluster: \
                 stop it (the cluster tests need 127.0.0.1:{FIRST_PORT}–{})",
                FIRST_PORT + NODES - 1
            ));
        }
        let _ = redis_cli(port, &["shutdown", "nosave"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir_text = dir.to_string_lossy().into_owned();
    for i in 0..NODES {
        let port = (FIRST_PORT + i).to_string();
        let config = format!("nodes-{port}.conf");
        let log = format!("{dir_text}/{port}.log");
        run(
            "redis-server",
            &[
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                &port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config,
                "--cluster-node-timeout",
                "2000",
                "--dir",
                &dir_text,
                "--logfile",
                &log,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )?;
    }
    wait_until("every node answers", || {
        (0..NODES).all(|i| answers(FIRST_PORT + i))
    })?;
    // Bounded: redis-cli waits for the nodes to join, which never happens if their cluster
    // bus ports (+10000) are blocked.
    let mut create = ["60", "redis-cli", "--cluster", "create"]
        .map(str::to_owned)
        .to_vec();
    create.extend((0..NODES).map(|i| format!("127.0.0.1:{}", FIRST_PORT + i)));
    create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(str::to_owned));
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    run("timeout", &create)?;
    wait_until("the cluster is ok on every node", || {
        (0..NODES).all(|i| healthy(FIRST_PORT + i))
    })
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn answers(port: u16) -> bool {
    redis_cli(port, &["ping"]).is_some_and(|out| out.trim() == "PONG")
}

/// The node answers, sees the whole cluster ok, and knows all six nodes.
fn healthy(port: u16) -> bool {
    let Some(info) = redis_cli(port, &["cluster", "info"]) else {
        return false;
    };
    info.contains("cluster_state:ok") && info.contains(&format!("cluster_known_nodes:{NODES}"))
}

fn wait_until(what: &str, done: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!(
                "the local Redis Cluster failed: {what} (logs in target/services/redis-cluster)"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
