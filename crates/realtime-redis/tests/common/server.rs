//! A Redis server of the test's own, on a free port, that the test may kill and restart;
//! killed when dropped, whatever the outcome. Fault tests never touch the shared 6379.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the server keeps its data across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: a restart comes back empty.
    None,
    /// AOF with `appendfsync always`: a restart comes back with every acknowledged write.
    AlwaysFsync,
    /// Snapshots taken only by [`OwnRedis::snapshot`]: a restart comes back with the data as
    /// of the last snapshot (an older state, as after a restore from backup).
    Snapshot,
}

pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
    /// With TLS only (`rediss://localhost:<port>`): the PEM of the CA that signed its
    /// certificate (generated for the test, with the key, in its directory).
    tls_ca: Option<String>,
}

impl OwnRedis {
    pub fn start(persistence: Persistence) -> OwnRedis {
        Self::start_with(persistence, false)
    }

    /// A server that speaks only TLS, with a certificate for `localhost` issued by a CA
    /// generated here ([`OwnRedis::ca_pem`]).
    pub fn start_tls() -> OwnRedis {
        Self::start_with(Persistence::None, true)
    }

    fn start_with(persistence: Persistence, tls: bool) -> OwnRedis {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("realtime-redis-fault-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tls_ca = tls.then(|| write_certificates(&dir));
        let mut server = OwnRedis {
            port,
            dir,
            persistence,
            child: None,
            tls_ca,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        match self.tls_ca {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://localhost:{}", self.port),
        }
    }

    /// The CA a client must trust to reach a [`start_tls`](OwnRedis::start_tls) server.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.tls_ca.clone().unwrap_or_default().into_bytes()
    }

    fn client(&self) -> redis::Client {
        match &self.tls_ca {
            None => redis::Client::open(self.url()).unwrap(),
            Some(ca) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone().into_bytes()),
                },
            )
            .unwrap(),
        }
    }

    /// Kills the server at once (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes a snapshot now (`SAVE`); with [`Persistence::Snapshot`] a restart returns to it.
    pub fn snapshot(&self) {
        let mut connection = self.client().get_connection().unwrap();
        redis::cmd("SAVE").query::<()>(&mut connection).unwrap();
    }

    /// Starts the server (again) and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match self.tls_ca {
            None => command.args(["--port", &port]),
            Some(_) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(self.dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(self.dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(self.dir.join("ca.pem")),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match self.persistence {
            Persistence::None | Persistence::Snapshot => command.args(["--appendonly", "no"]),
            Persistence::AlwaysFsync => {
                command.args(["--appendonly", "yes", "--appendfsync", "always"])
            }
        };
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("fault tests start their own redis-server (apt-get install redis-server): {e}")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let client = self.client();
            // PING answers LOADING while a snapshot or AOF is read back.
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a CA and a `localhost` server certificate signed by it into `dir` (`ca.pem`,
/// `server.pem`, `server.key`); returns the CA's PEM.
fn write_certificates(dir: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    ca.pem()
}
