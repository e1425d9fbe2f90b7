//! Project automation. Run `cargo xtask help`.

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

mod browser;
mod cluster;
mod conformance;
mod faults;
mod loadbench;
mod measure;
mod report;
mod results;
mod services;
mod soak;
#[cfg(test)]
mod tidy;

const HELP: &str = "\
cargo xtask <command>

Commands:
  test                          start the services the tests need, then run every test
                                (unit, conformance per backend, doc tests, the browser test of
                                the demo): the README's command
  conformance --backend NAME    run the conformance suite against one backend and print a table
                                (backends: memory, redis, redis-cluster, kafka, sqs, amqp,
                                nats; `all` runs every one and prints one table, backend × test)
  faults                        the fault suite (Redis killed and restarted, restored from an
                                older snapshot, evicted keys, killed pub/sub connections, a bus
                                that refuses events, the Kafka broker restarted empty, …) as
                                one table; part of `test`
  bench [-- CRITERION ARGS]     the criterion benchmarks (core, Redis), Kafka's and SQS's
                                latency and publish rate between two instances, then the fan-out
                                comparison with the hand-written baseline; writes BENCHMARKS.md
  loadbench                     only the fan-out comparison (writes BENCHMARKS.md)
  loadbench idle                only the idle memory per connection, printed
  loadbench case sse|ws N       one case of the demo alone, printed (REALTIME_LOADBENCH_DEMO
                                names another demo binary to compare)
  soak [--minutes N] [--seed S]  chaos soak: 3 demo instances on their own Redis and NATS,
                                SSE and WebSocket subscribers, random faults for N minutes
                                (default 3), every event accounted for; `test` soaks 2 min
  services                      start (installing if needed) every server the tests use:
                                Redis, NATS, RabbitMQ, tansu (Kafka), moto (SQS)
  ci                            fmt --check, clippy -D warnings, cargo doc -D warnings, cargo
                                deny (if installed), test
  help                          this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("conformance") => conformance::run(&args[1..]),
        Some("faults") => {
            services::ensure_for_tests().and_then(|()| faults::run(&mut Counts::default()))
        }
        Some("bench") => bench(&args[1..]),
        Some("loadbench") if args.get(1).map(String::as_str) == Some("idle") => {
            loadbench::run_idle()
        }
        Some("loadbench") if args.get(1).map(String::as_str) == Some("case") => {
            loadbench::run_one_case(&args[2..])
        }
        Some("loadbench") => loadbench::run_all(
            "(not run: `cargo xtask loadbench` runs the fan-out comparison only)",
        ),
        Some("ci") => ci(),
        Some("soak") => soak::run_soak(&args[1..], &mut Counts::default()),
        Some("services") => services::ensure_for_tests(),
        Some("help") | None => {
            eprint!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command in the workspace root, failing with its description if it fails.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_in(&workspace_root(), program, args)
}

/// Runs a command in `dir`, failing with its description if it fails.
pub(crate) fn run_in(dir: &std::path::Path, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!(
        "xtask: $ (in {}) {program} {}",
        dir.display(),
        args.join(" ")
    );
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}

pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn test() -> Result<(), String> {
    services::ensure_for_tests()?;
    let cargo = cargo();
    let mut counts = Counts::default();
    let mut command = Command::new(&cargo);
    // The fault scenarios (ignored in a plain `cargo test`) run below, with their table.
    command.args(["test", "--workspace", "--all-targets", "--locked"]);
    let units = run_counted(command, &mut counts);
    let faults = faults::run(&mut counts);
    let mut command = Command::new(&cargo);
    command.args(["test", "--workspace", "--doc", "--locked"]);
    let docs = run_counted(command, &mut counts);
    let browser = browser::test(&mut counts);
    let soaked = soak::run_soak(
        &["--minutes".to_owned(), soak::IN_TEST_MINUTES.to_owned()],
        &mut counts,
    );
    eprintln!();
    println!("all: {} passed, {} failed", counts.passed, counts.failed);
    units.and(faults).and(docs).and(browser).and(soaked)
}

/// Tests passed and failed, read from the runners' summary lines.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    passed: u64,
    failed: u64,
}

impl Counts {
    /// Adds what a libtest (`test result: ok. 3 passed; 0 failed; …`) or node test runner
    /// (`# pass 3`, `# fail 0`) summary line says.
    fn read(&mut self, line: &str) {
        let number = |text: &str| {
            text.trim()
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(['.', ';']) {
                let part = part.trim();
                if let Some(n) = part.strip_suffix(" passed").and_then(number) {
                    self.passed += n;
                } else if let Some(n) = part.strip_suffix(" failed").and_then(number) {
                    self.failed += n;
                }
            }
        } else if let Some(n) = line.strip_prefix("# pass ").and_then(number) {
            self.passed += n;
        } else if let Some(n) = line.strip_prefix("# fail ").and_then(number) {
            self.failed += n;
        }
    }
}

/// Runs `command` in the workspace root, echoing its output and counting its test results.
pub(crate) fn run_counted(command: Command, counts: &mut Counts) -> Result<(), String> {
    run_counted_lines(command, counts, |_| {})
}

/// [`run_counted`], also handing every output line to `each`.
pub(crate) fn run_counted_lines(
    mut command: Command,
    counts: &mut Counts,
    mut each: impl FnMut(&str),
) -> Result<(), String> {
    eprintln!("xtask: $ {command:?}");
    let mut child = command
        .current_dir(
            command
                .get_current_dir()
                .map(Into::into)
                .unwrap_or_else(workspace_root),
        )
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            counts.read(&line);
            each(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

fn bench(extra: &[String]) -> Result<(), String> {
    services::ensure_for_tests()?;
    let extra: Vec<&str> = extra
        .iter()
        .skip_while(|a| *a == "--")
        .map(String::as_str)
        .collect();
    let mut summary = String::new();
    for (package, bench) in [
        ("realtime-core", "fanout"),
        ("realtime-redis", "redis"),
        ("realtime-kafka", "kafka"),
        ("realtime-sqs", "sqs"),
        ("realtime-amqp", "amqp"),
        ("realtime-nats", "nats"),
    ] {
        let mut command = Command::new(cargo());
        command
            .args(["bench", "--locked", "-p", package, "--bench", bench, "--"])
            .args(&extra);
        summary.push_str(&run_captured(command)?);
    }
    loadbench::run_all(&summary)
}

/// Runs `command`, echoing its output, and returns criterion's result lines.
fn run_captured(mut command: Command) -> Result<String, String> {
    eprintln!("xtask: $ {command:?}");
    let mut child = command
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let mut kept = String::new();
    let mut name = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let mut measured = line.trim_start();
            // A benchmark's name stands alone on its line, or (when short) before `time:`.
            if !line.starts_with(' ')
                && !line.starts_with("Benchmarking")
                && !line.starts_with("Found")
            {
                let mut parts = line.splitn(2, char::is_whitespace);
                if let Some(first) = parts.next().filter(|f| !f.is_empty()) {
                    name = first.to_owned();
                    measured = parts.next().unwrap_or_default().trim_start();
                }
            }
            let kind = if measured.starts_with("time:") {
                "time"
            } else if measured.starts_with("thrpt:") {
                "thrpt"
            } else if measured.starts_with("redis_cpu:") {
                // Printed by the Redis publish benchmark beside criterion's figures.
                "redis_cpu"
            } else {
                continue;
            };
            let value = measured
                .split_once('[')
                .map_or(measured, |(_, v)| v.trim_end_matches(']'));
            // Only the first time/thrpt pair of a benchmark: later ones are changes.
            if !kept.contains(&format!("{name} {kind} ")) {
                kept.push_str(&format!("{name} {kind} [{value}]\n"));
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(kept)
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

/// The README's first command must build on a fresh machine, which has no cmake: the demo
/// is built with `CMAKE=/bin/false`, so any build script of its tree that runs cmake (the
/// `cmake` crate honours `CMAKE`) fails here rather than on a user's machine. (The `cmake`
/// crate is in the tree — aws-lc-sys depends on it and uses it only off Linux — so a look
/// at the dependency graph cannot replace the build. The check bites where build scripts
/// run: on CI's clean clone; a warm `target/` reuses their earlier output.)
/// Says how much disk the build has: a full CI build needs about 15 GiB, and a disk that
/// fills shows up as a linker's bus error, far from its cause.
fn report_free_disk() {
    let Ok(out) = Command::new("df").args(["-Pk", "."]).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let free_kib = text
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok());
    if let Some(kib) = free_kib {
        let gib = kib / (1024 * 1024);
        eprintln!("xtask: {gib} GiB free on the build's disk");
        if gib < 15 {
            eprintln!("xtask: warning: a full CI build needs about 15 GiB; this one may fail");
        }
    }
}

fn build_without_cmake(cargo: &str) -> Result<(), String> {
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "-p", "realtime-demo"])
        .env("CMAKE", "/bin/false")
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the demo does not build without cmake (CMAKE=/bin/false): {status}; a plain \
             build must need nothing installed by hand"
        ))
    }
}

fn ci() -> Result<(), String> {
    let cargo = cargo();
    report_free_disk();
    run(&cargo, &["fmt", "--all", "--check"])?;
    build_without_cmake(&cargo)?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Rustdoc without warnings: a broken link renders as raw brackets.
    let doc = Command::new(&cargo)
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--locked",
        ])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .map_err(|e| format!("cargo doc: {e}"))?;
    if !doc.success() {
        return Err(format!("cargo doc (warnings denied) failed: {doc}"));
    }
    match Command::new(&cargo).args(["deny", "--version"]).output() {
        Ok(out) if out.status.success() => {
            // `--offline` needs every package in Cargo.lock on disk, other platforms' too,
            // which no build downloads: only `cargo fetch` (all targets) does.
            run(&cargo, &["fetch", "--locked"])?;
            // Advisories need a database download this machine cannot make.
            run(
                &cargo,
                &["deny", "--offline", "check", "bans", "licenses", "sources"],
            )?;
        }
        _ => eprintln!("xtask: cargo-deny is not installed; skipping `cargo deny check`"),
    }
    test()
}

#[cfg(test)]
mod tests {
    use super::Counts;

    #[test]
    fn counts_libtest_and_node_summaries() {
        let mut counts = Counts::default();
        counts.read("test result: ok. 22 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        counts.read("test result: FAILED. 3 passed; 2 failed; 0 ignored");
        counts.read("# pass 2");
        counts.read("# fail 1");
        counts.read("test something ... ok");
        assert_eq!((counts.passed, counts.failed), (27, 3));
    }
}
