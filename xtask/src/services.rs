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
    /// The Debian package that provides `start[0]`.
    package: &'static str,
    start: &'static [&'static str],
}

const REDIS: Service = Service {
    name: "Redis",
    addr: "127.0.0.1:6379",
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

/// Makes sure every service the test suite uses is reachable.
pub(crate) fn ensure_for_tests() -> Result<(), String> {
    ensure(&REDIS)
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
    let program = service.start[0];
    if !on_path(program) {
        apt_install(&[service.package])?;
    }
    run(program, &service.start[1..])?;
    let deadline = Instant::now() + Duration::from_secs(60);
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
