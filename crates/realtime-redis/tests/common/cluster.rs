//! A Redis Cluster of the test's own (three masters, three replicas, on free ports) that the
//! test may damage; every node killed when dropped, whatever the outcome. Fault tests never
//! touch the shared local cluster.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnCluster {
    pub ports: Vec<u16>,
    bus_ports: Vec<u16>,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
}

/// Starts a cluster node on `port`: its cluster state in `dir/nodes-PORT.conf` (so a
/// restarted node rejoins as what it was), no data persisted.
fn spawn_node(port: u16, bus_port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-port", &bus_port.to_string()])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--cluster-node-timeout", "1000"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cluster tests start redis-server (apt-get install redis-server): {e}")
        })
}

/// `n` ports free now (held together while chosen, so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl OwnCluster {
    pub fn start() -> OwnCluster {
        // Client ports, then cluster-bus ports (port + 10000 may not exist).
        let ports = free_ports(12);
        let (ports, bus_ports) = ports.split_at(6);
        let dir = std::env::temp_dir().join(format!("realtime-redis-cluster-{}", ports[0]));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        for (port, bus_port) in ports.iter().zip(bus_ports) {
            nodes.push(Some(spawn_node(*port, *bus_port, &dir)));
        }
        let cluster = OwnCluster {
            ports: ports.to_vec(),
            bus_ports: bus_ports.to_vec(),
            dir,
            nodes,
        };
        cluster.wait("every node answers", |c| {
            c.ports.iter().all(|&p| cli(p, &["ping"]).trim() == "PONG")
        });
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(str::to_owned));
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        // Bounded (it waits for the nodes to join); the wait below says what failed.
        let _ = Command::new("timeout")
            .args(["60", "redis-cli", "-p", &cluster.ports[0].to_string()])
            .args(&create)
            .stdout(Stdio::null())
            .status();
        cluster.wait("the cluster is ok on every node", |c| {
            c.ports.iter().all(|&p| c.is_ok_on(p))
        });
        // A replica that has not synced with its master yet cannot take over from it.
        cluster.wait("every replica is in sync", |c| {
            let roles: Vec<String> = c
                .ports
                .iter()
                .map(|&p| cli(p, &["info", "replication"]))
                .collect();
            let replicas = roles.iter().filter(|r| r.contains("role:slave")).count();
            replicas == 3
                && roles
                    .iter()
                    .filter(|r| r.contains("role:slave"))
                    .all(|r| r.contains("master_link_status:up"))
        });
        cluster
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    fn is_ok_on(&self, port: u16) -> bool {
        let info = cli(port, &["cluster", "info"]);
        info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
    }

    /// The port of the master that owns the slot of keys tagged `{tag}`, as `from` sees it.
    pub fn master_of(&self, tag: &str, from: u16) -> u16 {
        self.try_master_of(tag, from)
            .unwrap_or_else(|| panic!("no master owns the slot of {tag:?}"))
    }

    /// The master owning `tag`'s slot, if one does (none while a failover is under way).
    pub fn try_master_of(&self, tag: &str, from: u16) -> Option<u16> {
        let slot: u16 = cli(from, &["cluster", "keyslot", tag])
            .trim()
            .parse()
            .unwrap();
        for line in cli(from, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                match (first.parse::<u16>(), last.parse::<u16>()) {
                    (Ok(first), Ok(last)) => (first..=last).contains(&slot),
                    _ => false,
                }
            });
            if owns {
                let address = fields[1].split('@').next()?;
                return address.rsplit(':').next()?.parse().ok();
            }
        }
        None
    }

    /// Kills the node on `port` at once (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        let index = self.ports.iter().position(|&p| p == port).unwrap();
        if let Some(mut child) = self.nodes[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again after [`kill`](Self::kill): it comes back empty and
    /// rejoins the cluster as its state file says; waits until it is a replica in sync
    /// (a master that failed over comes back as its successor's replica).
    pub fn restart_as_replica(&mut self, port: u16) {
        let index = self.ports.iter().position(|&p| p == port).unwrap();
        assert!(self.nodes[index].is_none(), "node {port} is running");
        self.nodes[index] = Some(spawn_node(port, self.bus_ports[index], &self.dir));
        self.wait("the restarted node is a replica in sync", |c| {
            let info = cli(port, &["info", "replication"]);
            info.contains("role:slave")
                && info.contains("master_link_status:up")
                && c.ports.iter().all(|&p| p == port || c.is_ok_on(p))
        });
    }

    /// The port of a replica of the master on `master`.
    pub fn replica_of(&self, master: u16) -> u16 {
        let nodes = cli(master, &["cluster", "nodes"]);
        let id = nodes
            .lines()
            .find(|line| line.contains("myself"))
            .and_then(|line| line.split_whitespace().next())
            .expect("the node names itself");
        nodes
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.len() > 3 && fields[2].contains("slave") && fields[3] == id)
            .and_then(|fields| {
                fields[1]
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no replica of {master}"))
    }

    /// Runs a command on every node but `skip` (with redis-cli).
    pub fn on_every_node_but(&self, skip: u16, args: &[&str]) {
        for &port in self.ports.iter().filter(|&&p| p != skip) {
            cli(port, args);
        }
    }

    /// Freezes the node on `port` (SIGSTOP): its connections stay open and it answers
    /// nothing, as a hung process or a frozen VM. [`resume`](Self::resume) thaws it; the drop
    /// kills it either way.
    pub fn pause(&mut self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// Thaws a node [`pause`](Self::pause)d (SIGCONT).
    pub fn resume(&mut self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        let index = self.ports.iter().position(|&p| p == port).unwrap();
        let child = self.nodes[index].as_ref().expect("the node is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} node {port}");
    }

    /// Waits until a surviving node names a master other than `dead` for `tag`'s slot and
    /// says the cluster is ok: the replica took over.
    pub fn wait_for_failover(&self, tag: &str, dead: u16) {
        let alive = *self.ports.iter().find(|&&p| p != dead).unwrap();
        self.wait("a replica is promoted", |c| {
            let info = cli(alive, &["cluster", "info"]);
            info.contains("cluster_state:ok")
                && c.try_master_of(tag, alive)
                    .is_some_and(|master| master != dead)
        });
    }

    fn wait(&self, what: &str, done: impl Fn(&OwnCluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "own Redis Cluster: {what} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
