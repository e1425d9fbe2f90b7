//! `cargo xtask bench`'s fan-out comparison: the demo server against the hand-written baseline
//! (`examples/loadbench`), same load, server pinned to CPU 0, load generators to CPU 1.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::measure::{cpu_seconds, field, quantile, read_line, rss_kib};
use crate::results::{Case, Cutoff, IdleMemory, Instances, Phase};
use crate::{run, workspace_root};

/// Publishing time per case, and the time after it in which late deliveries still count.
const PUBLISH_SECONDS: f64 = 4.0;
const DRAIN: Duration = Duration::from_secs(1);
/// Connections per load-generator process (each process has 20,000 files at most).
const PER_PROCESS: usize = 6_500;
/// Connections for the idle-memory measurement: as many as one server process can hold.
const MAX_CONNECTIONS: usize = 19_000;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("release").join(name)
}

fn start_server(name: &str) -> Result<Server, String> {
    match name {
        // The baseline's broadcast channel lets a subscriber fall 1,024 messages behind; the
        // demo gets the same slack before it counts a client as a slow consumer.
        "realtime" => start_demo("1024", "axum"),
        // The same demo on actix-web: what the framework choice costs.
        "realtime-actix" => start_demo("1024", "actix"),
        _ => start_binary(&binary("baseline"), &[]),
    }
}

fn start_demo(client_buffer: &str, framework: &str) -> Result<Server, String> {
    let demo = std::env::var_os("REALTIME_LOADBENCH_DEMO")
        .map_or_else(|| binary("realtime-demo"), Into::into);
    start_binary(
        &demo,
        &[
            "--max-connections",
            "30000",
            "--client-buffer",
            client_buffer,
            "--framework",
            framework,
        ],
    )
}

fn start_binary(bin: &std::path::Path, extra: &[&str]) -> Result<Server, String> {
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin)
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?;
    Ok(Server {
        url: url.to_owned(),
        child,
    })
}

struct Subscribers {
    processes: Vec<(Child, ChildStdin)>,
    connected: u64,
}

impl Drop for Subscribers {
    /// Closes each generator's standard input (it exits at end of input) and waits for it, so
    /// the next measurement starts without this one's connections, also after an error.
    fn drop(&mut self) {
        for (mut child, stdin) in self.processes.drain(..) {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

fn spawn_loadgen(
    url: &str,
    transport: &str,
    clients: usize,
    source_base: usize,
) -> Result<(Child, ChildStdin), String> {
    let mut child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(binary("loadgen"))
        .args([
            "subscribe",
            "--url",
            url,
            "--transport",
            transport,
            "--clients",
            &clients.to_string(),
        ])
        .args(["--sources", "3", "--source-base", &source_base.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start loadgen: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    Ok((child, stdin))
}

/// The number of connected clients a `loadgen subscribe` reports on its first line.
fn connected_count(child: &mut Child) -> Result<u64, String> {
    let line = read_line(child)?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0))
}

fn subscribe(url: &str, transport: &str, clients: usize) -> Result<Subscribers, String> {
    let count = clients.div_ceil(PER_PROCESS);
    let mut processes = Vec::new();
    for i in 0..count {
        let n = clients / count + usize::from(i < clients % count);
        processes.push(spawn_loadgen(url, transport, n, 2 + 3 * i)?);
    }
    let mut connected = 0;
    for (child, _) in &mut processes {
        connected += connected_count(child)?;
    }
    Ok(Subscribers {
        processes,
        connected,
    })
}

/// Offered deliveries per second in the steady, saturated and overload phases.
const STEADY_DELIVERIES: usize = 100_000;
const SATURATING_DELIVERIES: usize = 2_000_000;
const OVERLOAD_DELIVERIES: usize = 4_000_000;
/// The loaded phase offers this share of the baseline's saturated throughput.
const LOADED_SHARE: f64 = 0.7;

fn phase(
    pid: u32,
    url: &str,
    subscribers: &mut Subscribers,
    deliveries_per_second: usize,
    seconds: f64,
    seq_base: u64,
    drain: Duration,
) -> Result<Phase, String> {
    let loadgen_pids: Vec<u32> = subscribers.processes.iter().map(|(c, _)| c.id()).collect();
    let (cpu0, gen0) = (
        cpu_seconds(pid),
        loadgen_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>(),
    );
    let start = Instant::now();
    let rate = (deliveries_per_second / subscribers.connected.max(1) as usize).max(1);
    let mut publisher = Command::new("taskset")
        .args(["-c", "1"])
        .arg(binary("loadgen"))
        .args([
            "publish",
            "--url",
            url,
            "--rate",
            &rate.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--seq-base", &seq_base.to_string(), "--publishers", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start publisher: {e}"))?;
    let mut rss_max_kib = rss_kib(pid);
    while publisher.try_wait().map_err(|e| e.to_string())?.is_none() {
        rss_max_kib = rss_max_kib.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let published = field(&read_line(&mut publisher)?, "published");
    // A fixed grace period for deliveries still in flight: part of the method, not a wait for
    // a condition.
    std::thread::sleep(drain);
    let window = start.elapsed().as_secs_f64();
    let server_cpu = (cpu_seconds(pid) - cpu0) / window * 100.0;
    let loadgen_cpu =
        (loadgen_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - gen0) / window * 100.0;
    let (mut received, mut duplicates, mut reconnects) = (0, 0, 0);
    let mut histogram = vec![0u64; 400];
    for (child, stdin) in &mut subscribers.processes {
        stdin
            .write_all(b"report\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| e.to_string())?;
        let report = read_line(child)?;
        received += field(&report, "received");
        duplicates += field(&report, "duplicates");
        reconnects += field(&report, "reconnects");
        let counts = read_line(child)?;
        for (slot, count) in histogram.iter_mut().zip(counts.split_whitespace().skip(1)) {
            *slot += count.parse::<u64>().unwrap_or(0);
        }
    }
    Ok(Phase {
        offered: rate * subscribers.connected as usize,
        published,
        received,
        duplicates,
        reconnects,
        window,
        p50_us: quantile(&histogram, 0.50),
        p99_us: quantile(&histogram, 0.99),
        rss_max_kib,
        server_cpu,
        loadgen_cpu,
    })
}

/// One server under one transport and client count. `loaded` is the loaded phase's offer in
/// deliveries/s; `None` takes [`LOADED_SHARE`] of this server's own saturated throughput (the
/// baseline runs first and sets it for both).
fn run_case(
    server_name: &'static str,
    transport: &'static str,
    clients: usize,
    loaded: Option<usize>,
) -> Result<Case, String> {
    let server = start_server(server_name)?;
    let pid = server.child.id();
    let url = server.url.clone();
    let mut subscribers = subscribe(&url, transport, clients)?;
    let rss_idle_kib = rss_kib(pid);
    // Later phases start their sequence numbers above earlier ones, so duplicates show.
    let mut run = |offer: usize, seconds: f64, seq_base: u64| {
        phase(pid, &url, &mut subscribers, offer, seconds, seq_base, DRAIN)
    };
    let steady = run(STEADY_DELIVERIES, 3.0, 0)?;
    let saturated = run(SATURATING_DELIVERIES, PUBLISH_SECONDS, 1_000_000_000)?;
    let loaded_offer = loaded
        .unwrap_or_else(|| (saturated.received as f64 / saturated.window * LOADED_SHARE) as usize);
    let loaded = run(loaded_offer, PUBLISH_SECONDS, 2_000_000_000)?;
    let overload = run(OVERLOAD_DELIVERIES, PUBLISH_SECONDS, 3_000_000_000)?;
    Ok(Case {
        server: server_name,
        transport,
        clients,
        connected: subscribers.connected,
        rss_idle_kib,
        steady,
        saturated,
        loaded,
        overload,
    })
}

/// Subscribers in the cut-off case, and the time after publishing in which their resumed
/// replays still count.
const CUTOFF_CLIENTS: usize = 500;
const CUTOFF_DRAIN: Duration = Duration::from_secs(3);

fn cutoff(transport: &'static str) -> Result<Cutoff, String> {
    let server = start_demo("64", "axum")?;
    let pid = server.child.id();
    let mut subscribers = subscribe(&server.url, transport, CUTOFF_CLIENTS)?;
    let offer = 3_000 * CUTOFF_CLIENTS;
    let phase = phase(
        pid,
        &server.url,
        &mut subscribers,
        offer,
        3.0,
        0,
        CUTOFF_DRAIN,
    )?;
    Ok(Cutoff {
        transport,
        connected: subscribers.connected,
        phase,
    })
}

/// Instances in the scaled-out case, and SSE subscribers on each.
const INSTANCES: usize = 3;
const CLIENTS_PER_INSTANCE: usize = 5_000;
/// Offered in the scaled-out case: deliveries/s over all instances.
const INSTANCES_DELIVERIES: usize = 1_000_000;
/// The Redis-cost phase: subscribers per instance, and publishes/s offered.
const HEAVY_CLIENTS_PER_INSTANCE: usize = 10;
const HEAVY_PUBLISHES: usize = 3_000;

/// Redis's CPU seconds so far (user + system), read with `redis-cli`.
fn redis_cpu_seconds() -> f64 {
    let output = Command::new("redis-cli").args(["info", "cpu"]).output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| {
            l.split_once(':')
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        })
        .sum()
}

/// `clients` SSE subscribers on each of `servers`, as one set.
fn subscribe_each(servers: &[Server], clients: usize) -> Result<Subscribers, String> {
    let mut all = Subscribers {
        processes: Vec::new(),
        connected: 0,
    };
    for server in servers {
        let mut more = subscribe(&server.url, "sse", clients)?;
        all.connected += more.connected;
        all.processes.append(&mut more.processes);
    }
    Ok(all)
}

/// Three demo processes on the local Redis (shared store, Redis bus), subscribers spread over
/// them, one publisher on the first: every event crosses Redis to reach two of the three.
fn instances() -> Result<Instances, String> {
    let mut servers = Vec::new();
    for _ in 0..INSTANCES {
        servers.push(start_binary(
            &binary("realtime-demo"),
            &[
                "--max-connections",
                "30000",
                "--client-buffer",
                "1024",
                "--redis-url",
                "redis://127.0.0.1:6379",
            ],
        )?);
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let rss = || pids.iter().map(|p| rss_kib(*p)).sum::<u64>();
    let rss_empty_kib = rss();
    let mut subscribers = subscribe_each(&servers, CLIENTS_PER_INSTANCE)?;
    let rss_full_kib = rss();
    let cpu = || pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let (servers0, redis0, start) = (cpu(), redis_cpu_seconds(), Instant::now());
    let fanout = phase(
        pids[0],
        &servers[0].url,
        &mut subscribers,
        INSTANCES_DELIVERIES,
        PUBLISH_SECONDS,
        0,
        DRAIN,
    )?;
    let window = start.elapsed().as_secs_f64();
    let (servers_cpu, redis_cpu) = (
        (cpu() - servers0) / window * 100.0,
        (redis_cpu_seconds() - redis0) / window * 100.0,
    );
    // Redis's own cost per publish needs many publishes: a few subscribers per instance
    // (every instance still subscribed), publishing as fast as they take it.
    let connected = subscribers.connected;
    drop(subscribers);
    let mut few = subscribe_each(&servers, HEAVY_CLIENTS_PER_INSTANCE)?;
    let (redis0, offer) = (
        redis_cpu_seconds(),
        HEAVY_PUBLISHES * few.connected as usize,
    );
    let heavy = phase(
        pids[0],
        &servers[0].url,
        &mut few,
        offer,
        PUBLISH_SECONDS,
        1_000_000_000,
        DRAIN,
    )?;
    let redis_seconds = redis_cpu_seconds() - redis0;
    Ok(Instances {
        instances: INSTANCES,
        connected,
        rss_empty_kib,
        rss_full_kib,
        phase: fanout,
        servers_cpu,
        redis_cpu,
        redis_us_per_publish: redis_seconds * 1e6 / heavy.published.max(1) as f64,
        heavy_publishes: heavy.published as f64 / heavy.window,
    })
}

fn idle_memory(server_name: &'static str, transport: &'static str) -> Result<IdleMemory, String> {
    let server = start_server(server_name)?;
    let pid = server.child.id();
    let rss_empty_kib = rss_kib(pid);
    let subscribers = subscribe(&server.url, transport, MAX_CONNECTIONS)?;
    let rss_full_kib = rss_kib(pid);
    Ok(IdleMemory {
        server: server_name,
        transport,
        connections: subscribers.connected,
        rss_empty_kib,
        rss_full_kib,
    })
}

/// Only the idle-memory cases, printed (`BENCHMARKS.md` untouched): to check a change to
/// what a connection holds without the whole comparison.
pub(crate) fn run_idle() -> Result<(), String> {
    build()?;
    let mut idle = Vec::new();
    for transport in ["sse", "ws"] {
        for server in ["realtime", "realtime-actix"] {
            eprintln!("xtask: idle memory {server} at {MAX_CONNECTIONS} {transport} connections");
            idle.push(idle_memory(server, transport)?);
        }
    }
    println!("{}", crate::report::idle_table(&idle));
    Ok(())
}

/// One server's case alone (`cargo xtask loadbench case sse|ws CLIENTS`), its loaded phase at
/// 70 % of its own saturated rate, printed: to compare two builds of the demo on one machine
/// (`REALTIME_LOADBENCH_DEMO` names another demo binary), alternating runs against its spread.
pub(crate) fn run_one_case(args: &[String]) -> Result<(), String> {
    let transport = match args.first().map(String::as_str) {
        Some("sse") => "sse",
        Some("ws") => "ws",
        _ => return Err("usage: cargo xtask loadbench case sse|ws CLIENTS".into()),
    };
    let clients = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .ok_or("usage: cargo xtask loadbench case sse|ws CLIENTS")?;
    build()?;
    let case = run_case("realtime", transport, clients, None)?;
    let rate = |p: &Phase| p.received as f64 / p.window;
    let cost = |p: &Phase| p.server_cpu / 100.0 * p.window * 1e6 / p.received.max(1) as f64;
    println!(
        "{transport} {clients}: saturated {:.0}/s at {:.2} µs/delivery, overload {:.0}/s, \
         steady {:.2} µs/delivery, loss {}",
        rate(&case.saturated),
        cost(&case.saturated),
        rate(&case.overload),
        cost(&case.steady),
        case.saturated.published * clients as u64 - case.saturated.received,
    );
    Ok(())
}

fn build() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        &cargo,
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "realtime-demo",
            "-p",
            "realtime-loadbench",
        ],
    )
}

/// Builds the binaries, runs every case, prints the table and writes `BENCHMARKS.md`.
pub(crate) fn run_all(criterion: &str) -> Result<(), String> {
    build()?;
    let mut cases = Vec::new();
    for transport in ["sse", "ws"] {
        for clients in [1_000, 10_000] {
            eprintln!("xtask: fan-out baseline {transport} {clients} clients");
            let baseline = run_case("baseline", transport, clients, None)?;
            let loaded = baseline.loaded.offered;
            for server in ["realtime", "realtime-actix"] {
                eprintln!("xtask: fan-out {server} {transport} {clients} clients");
                cases.push(run_case(server, transport, clients, Some(loaded))?);
            }
            cases.push(baseline);
        }
    }
    let mut cutoffs = Vec::new();
    for transport in ["sse", "ws"] {
        eprintln!("xtask: slow consumers cut off and resuming, {transport}");
        cutoffs.push(cutoff(transport)?);
    }
    eprintln!("xtask: {INSTANCES} instances on Redis, {CLIENTS_PER_INSTANCE} SSE subscribers each");
    let scaled = instances()?;
    let mut idle = Vec::new();
    for transport in ["sse", "ws"] {
        for server in ["realtime", "realtime-actix", "baseline"] {
            eprintln!("xtask: idle memory {server} at {MAX_CONNECTIONS} {transport} connections");
            idle.push(idle_memory(server, transport)?);
        }
    }
    let report = crate::report::render(&cases, &cutoffs, &scaled, &idle, criterion);
    eprintln!("{report}");
    let path = workspace_root().join("BENCHMARKS.md");
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(report.as_bytes()).map_err(|e| e.to_string())
}
