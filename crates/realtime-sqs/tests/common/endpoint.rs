//! A moto server of the test's own, on a free port, that the test may kill and restart (it
//! keeps its state in memory: a restart comes back empty); killed when dropped, whatever the
//! outcome. Fault tests never touch the shared endpoint on 4566.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnEndpoint {
    pub port: u16,
    child: Option<Child>,
}

impl OwnEndpoint {
    pub fn start() -> OwnEndpoint {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut endpoint = OwnEndpoint { port, child: None };
        endpoint.restart();
        endpoint
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once; its queues are gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again, empty) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server (`pip install 'moto[server]'`; `cargo xtask test` does): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnEndpoint {
    fn drop(&mut self) {
        self.kill();
    }
}
