//! `realtime-soak`: three demo instances on a shared store (Redis) and a bus (NATS), SSE and
//! WebSocket subscribers, a publisher and random faults for N minutes, then every event
//! accounted for per subscriber: delivered once and in order, or inside a gap the
//! subscriber was told about. Exits non-zero on any silent loss, duplicate, reorder or
//! subscriber that never caught up. `cargo xtask soak --minutes N` builds and runs it.
//!
//! ```text
//! realtime-soak --demo target/debug/realtime-demo [--minutes 3] [--seed N] [--dir target/soak]
//! ```

#![allow(clippy::print_stdout)]

mod accounting;
mod faults;
mod publisher;
mod servers;
mod subscribers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use accounting::{HEADER, Tally, account};
use faults::{Rng, World};
use publisher::Publisher;
use servers::Process;
use subscribers::{CHANNELS, Subscriber, Transport};

/// How long the subscribers have to catch up once the faults stop.
const CATCH_UP: Duration = Duration::from_secs(90);

struct Args {
    minutes: f64,
    seed: u64,
    demo: PathBuf,
    dir: PathBuf,
}

fn args() -> Result<Args, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut args = Args {
        minutes: 3.0,
        seed: now,
        demo: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("realtime-demo"),
        dir: PathBuf::from("target/soak"),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => {
                args.minutes = value
                    .parse()
                    .map_err(|e| format!("--minutes {value:?}: {e}"))?;
            }
            "--seed" => {
                args.seed = value
                    .parse()
                    .map_err(|e| format!("--seed {value:?}: {e}"))?
            }
            "--demo" => args.demo = value.into(),
            "--dir" => args.dir = value.into(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    // Interrupted (Ctrl-C, a CI timeout's SIGTERM), the run is dropped: each server it
    // started is thawed and killed as it goes.
    let outcome = tokio::select! {
        outcome = run() => outcome,
        () = interrupted() => Err("interrupted; its servers are stopped".to_owned()),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn run() -> Result<bool, String> {
    let args = args()?;
    fresh_dir(&args.dir)?;
    eprintln!(
        "soak: {} min, seed {} (logs in {})",
        args.minutes,
        args.seed,
        args.dir.display()
    );
    let mut redis = Process::redis(&args.dir)?;
    redis.start().await?;
    let mut nats = Process::nats(&args.dir)?;
    nats.start().await?;
    let mut demos = Vec::new();
    for index in 0..3 {
        let mut demo = Process::demo(index, &args.demo, &redis, &nats, &args.dir)?;
        demo.start().await?;
        demos.push(demo);
    }
    let ports: Vec<u16> = demos.iter().map(|d| d.port).collect();

    // Per instance: an SSE subscriber on each channel and a WebSocket one on both.
    let mut subscribers = Vec::new();
    for (index, &port) in ports.iter().enumerate() {
        for (channel, name) in CHANNELS.iter().enumerate() {
            let mut sse =
                Subscriber::new(format!("sse-{name}-{index}"), Transport::Sse, vec![channel]);
            sse.connect(port).await?;
            subscribers.push(sse);
        }
        let mut ws = Subscriber::new(
            format!("ws-{index}"),
            Transport::WebSocket,
            (0..CHANNELS.len()).collect(),
        );
        ws.connect(port).await?;
        subscribers.push(ws);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for subscriber in &subscribers {
        while subscriber.connects.load(Ordering::Relaxed) == 0 {
            if Instant::now() >= deadline {
                return Err(format!("{} never connected", subscriber.name));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut publisher = Publisher::new(ports, args.seed)?;
    let (published, retries) = (publisher.published.clone(), publisher.retries.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let give_up = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (stop, give_up) = (stop.clone(), give_up.clone());
        tokio::spawn(async move {
            let mut turn = 0;
            while !stop.load(Ordering::Relaxed) {
                publisher
                    .publish_next(turn % CHANNELS.len(), &give_up)
                    .await?;
                turn += 1;
                // The pace of publishing (about 40 events a second), not a synchronisation.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok::<_, String>(publisher)
        })
    };

    let mut world = World {
        redis,
        nats,
        demos,
        subscribers,
        http,
        started: Instant::now(),
        log: Vec::new(),
        counts: Default::default(),
    };
    let mut rng = Rng::new(args.seed);
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    while world.started.elapsed() < length {
        // The quiet between two faults.
        tokio::time::sleep(rng.millis(1_000, 5_000)).await;
        world.fault(&mut rng).await?;
    }

    // Faults over: the last event of each channel, then every subscriber must reach it.
    stop.store(true, Ordering::Relaxed);
    let stopper = {
        let give_up = give_up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CATCH_UP).await;
            give_up.store(true, Ordering::Relaxed);
        })
    };
    let mut publisher = publishing.await.map_err(|e| e.to_string())??;
    for channel in 0..CHANNELS.len() {
        publisher.publish_next(channel, &give_up).await?;
    }
    stopper.abort();
    let published = published.lock().await.clone();
    let last: Vec<u64> = published.iter().map(|ids| ids.len() as u64).collect();
    let deadline = Instant::now() + CATCH_UP;
    for subscriber in &world.subscribers {
        while !subscriber.has_reached(&last).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for subscriber in &mut world.subscribers {
        subscriber.stop();
    }
    Ok(report(&world, &published, retries.load(Ordering::Relaxed)).await)
}

/// Empties `dir` for this run — only if an earlier soak made it (its marker is there) or it
/// is empty: `--dir` never deletes what the soak did not create.
fn fresh_dir(dir: &std::path::Path) -> Result<(), String> {
    const MARKER: &str = ".realtime-soak";
    let shown = dir.display();
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() && !dir.join(MARKER).exists() {
            return Err(format!(
                "{shown} is not empty and not an earlier soak's: name another --dir"
            ));
        }
        std::fs::remove_dir_all(dir).map_err(|e| format!("{shown}: {e}"))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{shown}: {e}"))?;
    std::fs::write(dir.join(MARKER), "").map_err(|e| format!("{shown}: {e}"))
}

/// Prints the fault log and the accounting table; `true` when every event is accounted for.
async fn report(world: &World, published: &[Vec<String>], retries: u64) -> bool {
    println!(
        "\n## Faults ({:.1} min)\n",
        world.started.elapsed().as_secs_f64() / 60.0
    );
    for line in &world.log {
        println!("    {line}");
    }
    println!();
    for (kind, count) in &world.counts {
        println!("- {kind}: {count}");
    }
    let events: Vec<String> = published
        .iter()
        .zip(CHANNELS)
        .map(|(ids, name)| format!("{name} {}", ids.len()))
        .collect();
    println!(
        "\n## Accounting\n\npublished: {} (publish attempts retried: {retries})\n",
        events.join(", ")
    );
    println!("    subscriber     transport  connects  cuts  {HEADER}");
    let mut total = Tally::default();
    let mut clean = true;
    for subscriber in &world.subscribers {
        let taken = subscriber.taken.lock().await;
        let tally = account(&taken.log, &subscriber.channels, published);
        total.add(&tally);
        let transport = match subscriber.transport {
            Transport::Sse => "sse",
            Transport::WebSocket => "websocket",
        };
        println!(
            "    {:<14} {transport:<10} {:>8} {:>5}  {tally}",
            subscriber.name,
            subscriber.connects.load(Ordering::Relaxed),
            subscriber.cuts,
        );
        for error in &taken.fatal {
            println!("      error: {error}");
        }
        clean &= !tally.failed() && taken.fatal.is_empty();
    }
    println!(
        "    {:<14} {:<10} {:>8} {:>5}  {total}",
        "total", "", "", ""
    );
    println!(
        "\nsoak: {}",
        if clean {
            "every event delivered once, in order, or inside a gap the subscriber was told about"
        } else {
            "FAILED: silent loss, a duplicate, a reorder or a subscriber that never caught up"
        }
    );
    clean
}
