//! What a fan-out comparison measured: written by `loadbench`, read by `report`.

/// One publishing phase against connected subscribers.
pub(crate) struct Phase {
    /// Deliveries per second offered (publishes/s × subscribers).
    pub(crate) offered: usize,
    pub(crate) published: u64,
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    /// Subscribers that the server cut off and that came back (resuming where it offers).
    pub(crate) reconnects: u64,
    pub(crate) window: f64,
    pub(crate) p50_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
    pub(crate) rss_max_kib: u64,
    pub(crate) server_cpu: f64,
    pub(crate) loadgen_cpu: f64,
}

pub(crate) struct Case {
    pub(crate) server: &'static str,
    pub(crate) transport: &'static str,
    pub(crate) clients: usize,
    pub(crate) connected: u64,
    pub(crate) rss_idle_kib: u64,
    /// A light load: latency without queueing.
    pub(crate) steady: Phase,
    /// More than the baseline sustains: throughput.
    pub(crate) saturated: Phase,
    /// 70 % of the baseline's saturated throughput, offered to both: latency under load.
    pub(crate) loaded: Phase,
    /// Twice the saturating offer: what each server does beyond its capacity.
    pub(crate) overload: Phase,
}

pub(crate) struct IdleMemory {
    pub(crate) server: &'static str,
    pub(crate) transport: &'static str,
    pub(crate) connections: u64,
    pub(crate) rss_empty_kib: u64,
    pub(crate) rss_full_kib: u64,
}

/// Three demo instances sharing one Redis (store and bus), SSE subscribers spread over them,
/// one publisher on the first: what a horizontally scaled deployment delivers.
pub(crate) struct Instances {
    pub(crate) instances: usize,
    pub(crate) connected: u64,
    /// Heap and all, summed over the instances, before and after the subscribers connected.
    pub(crate) rss_empty_kib: u64,
    pub(crate) rss_full_kib: u64,
    pub(crate) phase: Phase,
    /// CPU of every instance together over the phase, % of one core.
    pub(crate) servers_cpu: f64,
    /// Redis's CPU over the phase, % of one core (`INFO cpu`).
    pub(crate) redis_cpu: f64,
    /// A second phase with few subscribers per instance and many publishes: Redis's CPU per
    /// publish (µs) with every instance subscribed, and the publishes/s it was measured at.
    pub(crate) redis_us_per_publish: f64,
    pub(crate) heavy_publishes: f64,
}

/// Subscribers that cannot keep up: realtime with a 64-message client buffer, offered more
/// than 500 subscribers read, so it cuts them off and they resume with their last id.
pub(crate) struct Cutoff {
    pub(crate) transport: &'static str,
    pub(crate) connected: u64,
    pub(crate) phase: Phase,
}
