//! The `BENCHMARKS.md` table.

use std::fmt::Write as _;

use crate::results::{Case, Cutoff, IdleMemory, Instances, Phase};

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(String::new(), |kib| format!(", {} GiB", kib / 1024 / 1024));
    format!(
        "{} ({cores} cores{memory})",
        model.unwrap_or_else(|| "unknown CPU".into())
    )
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d %H:%M %Z")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn ms(us: Option<u64>) -> String {
    us.map_or("–".into(), |us| format!("{:.1}", us as f64 / 1000.0))
}

pub(crate) fn render(
    cases: &[Case],
    cutoffs: &[Cutoff],
    scaled: &Instances,
    idle: &[IdleMemory],
    criterion: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "- date: {}\n- machine: {}\n- command: `cargo xtask bench`\n",
        today(),
        machine()
    );
    let _ = writeln!(
        out,
        "Fan-out over loopback: the demo server (`realtime`, in-memory store and bus, served by \
         `realtime_sse_axum::Server`), the same demo on actix-web (`realtime-actix`, \
         `--framework actix`: `realtime-sse-actix`, `realtime-ws-actix`) and the hand-written baseline (axum `Sse`/WebSocket over \
         `tokio::sync::broadcast` under `axum::serve`, `examples/loadbench/src/bin/baseline.rs`) \
         under the same load. Each server is pinned to CPU 0, the load generators (`loadgen`, one \
         process per 6,500 connections, spread over 127.0.0.x) to CPU 1. Each case connects the \
         clients, then publishes ~100-byte events (four keep-alive connections, pipelined) in \
         four phases: *steady*, 3 s offering 100 k deliveries/s (latency at a light load); \
         *saturated*, 4 s offering 2 M deliveries/s (throughput: more than the baseline \
         sustains); *loaded*, 4 s offering 70 % of the baseline's saturated throughput to both \
         (latency under the same real load); *overload*, 4 s offering 4 M deliveries/s (beyond \
         capacity). After each phase deliveries still count for 1 s. `loss` is offered − \
         received at the end of that window (in flight, or dropped). `reconnects` counts \
         subscribers the server cut off (realtime, run with a 1,024-message client buffer — the \
         slack the baseline's `broadcast` channel gives — closes a client whose queue \
         overflows) that came back and resumed with `Last-Event-ID` (SSE) or `last_event_ids` \
         (WebSocket), as a browser would. Latency is publish → receive, from the send time in \
         the payload, in 5 % buckets. CPU is % of one core, in the saturated phase, user + system \
         time from `/proc` (softirq time, which carries loopback receive processing, is charged \
         to no process, so a busy server shows about 80 %). `server µs/delivery` is that CPU \
         time per event received.\n"
    );
    let rate = |p: &Phase| p.received as f64 / p.window;
    let loss =
        |c: &Case, p: &Phase| (p.published * c.connected).saturating_sub(p.received) + p.duplicates;
    // Server CPU time per delivered event.
    let cost = |p: &Phase| p.server_cpu / 100.0 * p.window / p.received.max(1) as f64 * 1e6;
    let _ = writeln!(
        out,
        "### Latency (ms)\n\n\
         | transport | clients | server | connected | steady offer/s | steady p50 | steady p99 | loaded offer/s | loaded p50 | loaded p99 |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in cases {
        let (steady, loaded) = (&c.steady, &c.loaded);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.transport,
            c.clients,
            c.server,
            c.connected,
            steady.offered,
            ms(steady.p50_us),
            ms(steady.p99_us),
            loaded.offered,
            ms(loaded.p50_us),
            ms(loaded.p99_us),
        );
    }
    let _ = writeln!(
        out,
        "\n### Throughput (saturated: 2 M deliveries/s offered) and cost\n\n\
         | transport | clients | server | deliveries/s | published | received | loss | reconnects | server µs/delivery | steady server µs/delivery | RSS idle MiB | RSS load MiB | server CPU % | loadgen CPU % |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in cases {
        let sat = &c.saturated;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} |",
            c.transport,
            c.clients,
            c.server,
            rate(sat),
            sat.published,
            sat.received,
            loss(c, sat),
            sat.reconnects,
            cost(sat),
            cost(&c.steady),
            c.rss_idle_kib as f64 / 1024.0,
            sat.rss_max_kib as f64 / 1024.0,
            sat.server_cpu,
            sat.loadgen_cpu,
        );
    }
    let _ = writeln!(
        out,
        "\n### Overload: 4 M deliveries/s offered\n\n\
         | transport | clients | server | delivered/s | published | received | loss | reconnects | p99 ms | server CPU % | loadgen CPU % |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in cases {
        let o = &c.overload;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            c.transport,
            c.clients,
            c.server,
            rate(o),
            o.published,
            o.received,
            loss(c, o),
            o.reconnects,
            ms(o.p99_us),
            o.server_cpu,
            o.loadgen_cpu,
        );
    }
    let _ = writeln!(
        out,
        "\n## Ratios (realtime on axum and on actix-web ÷ baseline, same run)\n"
    );
    let _ = writeln!(out, "Targets: deliveries/s ≥ 1.5, p99 ≤ 0.5.\n");
    let _ = writeln!(
        out,
        "Peak deliveries/s: each server's best received rate over the saturated (2 M/s offered) \
         and overload (4 M/s) phases.\n\n\
         | server | transport | clients | peak deliveries/s | saturated deliveries/s | steady p99 | loaded p99 | steady server µs/delivery |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
    let peak = |c: &Case| rate(&c.saturated).max(rate(&c.overload)).max(1.0);
    let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
        _ => "–".into(),
    };
    // realtime on axum, then on actix-web, each against the same baseline run.
    for ours in cases.iter().filter(|c| c.server.starts_with("realtime")) {
        let Some(theirs) = cases.iter().find(|c| {
            c.server == "baseline" && c.transport == ours.transport && c.clients == ours.clients
        }) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.2} |",
            ours.server,
            ours.transport,
            ours.clients,
            peak(ours) / peak(theirs),
            rate(&ours.saturated) / rate(&theirs.saturated).max(1.0),
            ratio(ours.steady.p99_us, theirs.steady.p99_us),
            ratio(ours.loaded.p99_us, theirs.loaded.p99_us),
            cost(&ours.steady) / cost(&theirs.steady).max(1e-9),
        );
    }
    let _ = writeln!(
        out,
        "\n## Slow consumers: cut off, resumed, nothing lost\n\n\
         realtime with `--client-buffer 64` and 500 subscribers, offered 1.5 M deliveries/s for 3 s \
         (more than they read): the server closes a subscriber whose queue overflows, `loadgen` \
         reconnects with its last id like a browser, and the replay fills the hole. Counted 3 s \
         after publishing ends.\n\n\
         | transport | subscribers | published | expected (published × subscribers) | received | duplicates | cut off and resumed | every event exactly once |\n\
         |---|---:|---:|---:|---:|---:|---:|---|"
    );
    for c in cutoffs {
        let p = &c.phase;
        let expected = p.published * c.connected;
        let exact = p.received == expected && p.duplicates == 0;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {expected} | {} | {} | {} | {} |",
            c.transport,
            c.connected,
            p.published,
            p.received,
            p.duplicates,
            p.reconnects,
            if exact { "yes" } else { "no" },
        );
    }
    instances(&mut out, scaled);
    let _ = writeln!(out, "\n## Idle memory per connection\n");
    out.push_str(&idle_table(idle));
    let _ = writeln!(
        out,
        "\n## Micro-benchmarks (criterion)\n\n```text\n{}\n```",
        criterion.trim()
    );
    let _ = writeln!(out, "\n{}", include_str!("../bench-notes.md").trim_end());
    out
}

/// Connections one instance is planned to hold in the projection: under a 65,536-descriptor
/// limit, with room for Redis, listeners and spikes.
const PLANNED_PER_INSTANCE: f64 = 50_000.0;

fn instances(out: &mut String, m: &Instances) {
    let p = &m.phase;
    let per_kib = m.rss_full_kib.saturating_sub(m.rss_empty_kib) as f64 / m.connected.max(1) as f64;
    let delivered = p.received as f64 / p.window;
    let ms = |us: Option<u64>| us.map_or("-".to_owned(), |us| format!("{:.1}", us as f64 / 1000.0));
    let _ = writeln!(
        out,
        "\n## {} instances on one Redis\n\n{} demo processes with `--redis-url` (Redis the shared store \
         and the bus), {} SSE subscribers spread evenly over them (one channel), one publisher on \
         the first instance offering {:.0} k deliveries/s for {} s: two thirds of the deliveries \
         cross Redis. All instances on CPU 0, the generators on CPU 1, Redis unpinned.\n",
        m.instances,
        m.instances,
        m.connected,
        p.offered as f64 / 1000.0,
        p.window.round()
    );
    let _ = writeln!(
        out,
        "| published | received | loss | deliveries/s | p50 ms | p99 ms | instances CPU % | Redis CPU % | KiB per connection |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let expected = p.published * m.connected;
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.1} |",
        p.published,
        p.received,
        expected.saturating_sub(p.received),
        delivered,
        ms(p.p50_us),
        ms(p.p99_us),
        m.servers_cpu,
        m.redis_cpu,
        per_kib
    );
    // The projection, from these figures only.
    let per_core = delivered / (m.servers_cpu / 100.0).max(0.01);
    let redis_us_per_publish = m.redis_us_per_publish;
    let instances_1m = (1e6 / PLANNED_PER_INSTANCE).ceil();
    let redis_us_at_scale = redis_us_per_publish * instances_1m / m.instances as f64;
    let _ = writeln!(
        out,
        "\n**Projection to 1 M connections** (arithmetic on the row above; assumptions stated):\n\n\
         - Memory: {per_kib:.1} KiB per idle SSE connection → {:.1} GiB for 1 M, plus each \
           instance's own ~10 MiB.\n\
         - Instances: {PLANNED_PER_INSTANCE:.0} connections each (a 65,536-descriptor limit with \
           headroom) → {instances_1m:.0} instances, {:.0} MiB each when idle.\n\
         - Fan-out CPU: {per_core:.0} deliveries/s per core measured here → 1 M connections \
           receiving one event a second each need {:.1} cores across the instances.\n\
         - Redis: {redis_us_per_publish:.0} µs of Redis CPU per publish with {} instances \
           subscribed (Redis's CPU over a second phase of {:.0} publishes/s to 10 subscribers per \
           instance, idle time and one request per round trip included; the pipelined figure \
           is the `publish_concurrently_64` benchmark's). With {instances_1m:.0} instances \
           following a channel, Redis copies each message {instances_1m:.0} times: between \
           ~{:.0} publishes/s per Redis core (the copies cost nothing) and ~{:.0} (the whole \
           cost grows with the copies, ~{redis_us_at_scale:.0} µs per publish). Past that, \
           Redis Cluster's sharded pub/sub spreads channels over shards \
           (`RedisBusConfig::cluster`), each shard carrying only its channels.",
        per_kib * 1e6 / 1024.0 / 1024.0,
        per_kib * PLANNED_PER_INSTANCE / 1024.0,
        1e6 / per_core.max(1.0),
        m.instances,
        m.heavy_publishes,
        1e6 / redis_us_per_publish.max(1.0),
        1e6 / redis_us_at_scale.max(1.0)
    );
}

/// The idle-memory table (also printed alone by `cargo xtask loadbench idle`).
pub(crate) fn idle_table(idle: &[IdleMemory]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| transport | server | connections | RSS empty MiB | RSS full MiB | KiB per connection |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for m in idle {
        let per =
            m.rss_full_kib.saturating_sub(m.rss_empty_kib) as f64 / m.connections.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {per:.1} |",
            m.transport,
            m.server,
            m.connections,
            m.rss_empty_kib as f64 / 1024.0,
            m.rss_full_kib as f64 / 1024.0
        );
    }
    out
}
