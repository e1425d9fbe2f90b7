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
}

impl OwnRedis {
    pub fn start(persistence: Persistence) -> OwnRedis {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("realtime-redis-fault-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = OwnRedis {
            port,
            dir,
            persistence,
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("SAVE").query::<()>(&mut connection).unwrap();
    }

    /// Starts the server (again) and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
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
            let client = redis::Client::open(self.url()).unwrap();
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
