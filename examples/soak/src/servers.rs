//! The processes the soak runs and breaks: its own Redis (the shared store, AOF fsynced on
//! every write), its own NATS (the bus) and three demo instances. Each is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long a started or thawed process may take to answer.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// What kind of process, to know when it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Redis,
    Nats,
    Demo,
}

/// One process the soak can kill, restart, pause and resume.
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) port: u16,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn new(name: &str, kind: Kind, port: u16, program: &Path, dir: &Path) -> Process {
        Process {
            name: name.to_owned(),
            kind,
            port,
            program: program.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// A Redis on a free port, writing its append-only file under `dir`, fsynced before
    /// each write is acknowledged: a kill loses nothing a publisher was told was stored.
    pub(crate) fn redis(dir: &Path) -> Result<Process, String> {
        let port = free_port()?;
        let data = dir.join("redis");
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let mut process = Process::new("redis", Kind::Redis, port, Path::new("redis-server"), dir);
        process.args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
        ]
        .map(str::to_owned)
        .to_vec();
        process.args.push(data.display().to_string());
        Ok(process)
    }

    /// A core NATS server (no JetStream: the bus needs none) on a free port.
    pub(crate) fn nats(dir: &Path) -> Result<Process, String> {
        let port = free_port()?;
        let mut process = Process::new("nats", Kind::Nats, port, Path::new("nats-server"), dir);
        process.args = ["-a", "127.0.0.1", "-p", &port.to_string()]
            .map(str::to_owned)
            .to_vec();
        Ok(process)
    }

    /// Demo instance `index` on a free port, Redis the store and NATS the bus; odd ones run
    /// on actix-web, even ones on axum.
    pub(crate) fn demo(
        index: usize,
        demo: &Path,
        redis: &Process,
        nats: &Process,
        dir: &Path,
    ) -> Result<Process, String> {
        let port = free_port()?;
        let mut process = Process::new(&format!("demo-{index}"), Kind::Demo, port, demo, dir);
        let framework = if index % 2 == 1 { "actix" } else { "axum" };
        process.env = vec![
            ("REALTIME_ADDR".into(), format!("127.0.0.1:{port}")),
            (
                "REALTIME_REDIS_URL".into(),
                format!("redis://127.0.0.1:{}", redis.port),
            ),
            (
                "REALTIME_NATS_URL".into(),
                format!("nats://127.0.0.1:{}", nats.port),
            ),
            ("REALTIME_FRAMEWORK".into(), framework.into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        Ok(process)
    }

    pub(crate) fn framework(&self) -> &str {
        self.env
            .iter()
            .find(|(name, _)| name == "REALTIME_FRAMEWORK")
            .map_or("", |(_, value)| value)
    }

    /// Starts it (its output appended to its log) and waits until it answers.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({}): {e}",
                    self.name,
                    self.program.display()
                )
            })?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Waits until it answers: Redis `PONG`, NATS its `INFO`, a demo 200 on `/readyz`.
    pub(crate) async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        while !self.answers().await {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer on port {} within {READY_WITHIN:?} (see {})",
                    self.name,
                    self.port,
                    self.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn answers(&self) -> bool {
        let attempt = async {
            let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok()?;
            let (ask, expect): (&[u8], &[u8]) = match self.kind {
                Kind::Redis => (b"PING\r\n", b"+PONG"),
                Kind::Nats => (b"", b"INFO"),
                Kind::Demo => (
                    b"GET /readyz HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n",
                    b"HTTP/1.1 200",
                ),
            };
            socket.write_all(ask).await.ok()?;
            let mut answer = vec![0u8; expect.len()];
            socket.read_exact(&mut answer).await.ok()?;
            Some(answer == expect)
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), attempt).await,
            Ok(Some(true))
        )
    }

    /// SIGKILL, and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: its sockets stay open and it answers nothing, as a hung process.
    pub(crate) fn pause(&self) -> Result<(), String> {
        self.signal("-STOP")
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub(crate) fn resume(&self) -> Result<(), String> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), String> {
        let child = self
            .child
            .as_ref()
            .ok_or(format!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .map_err(|e| format!("kill {signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {}: {status}", self.name))
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused process takes no SIGKILL until thawed on some kernels' accounting:
            // thaw first, then kill.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// A port free now (bound and released).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
